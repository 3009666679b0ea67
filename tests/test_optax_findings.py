"""Optax 0.2.8 (JAX 0.10.2, CPU) departures from its own dialect specs, reproduced directly; each test fails
once the library (or XLA) is fixed.  Evidence: docs/measured/known-deviations.md."""
from __future__ import annotations

import numpy as np
import pytest

optax = pytest.importorskip("optax")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from conformance.backends.optax_backend import backend  # noqa: E402  (turns on jax_enable_x64, as the backend runs)


def test_optax_adam_float16_is_nan_where_the_bias_correction_reciprocal_overflows():
    """optax-float16-bias-correction-reciprocal: lr = 0 must leave θ as it is; XLA's x·(1/c) makes it NaN."""
    theta = jnp.asarray(np.array([0.01255, 7.652], np.float16))
    tx = optax.adam(0.0, b1=0.9, b2=0.9999990463256836, eps=1e-8, eps_root=10.0)
    updates, _ = tx.update(theta, tx.init(theta), theta)
    after = np.asarray(optax.apply_updates(theta, updates), dtype=np.float64)
    assert np.isnan(after[0])  # the spec (and a correctly rounded division): θ unchanged, 0.01255
    assert after[1] == np.float64(np.float16(7.652))


def test_xla_divides_by_a_scalar_through_its_reciprocal():
    """The cause: [0, 5.585e-05] / 2⁻²⁰ in float16 is [0, 58.56] correctly rounded; XLA gives [nan, inf]."""
    got = np.asarray(jnp.asarray(np.array([0.0, 5.585e-05], np.float16)) / jnp.asarray(2.0 ** -20, jnp.float16))
    assert np.isnan(got[0]) and np.isinf(got[1])


def test_the_predicate_covers_the_case_and_not_the_defaults():
    from conformance.backend import Case, Group
    from conformance.deviation_predicates import _optax_float16_bias_correction_reciprocal_overflows as covers

    def case(beta2):
        p = np.ones(2, np.float16)
        return Case("adam@optax", "float16", [Group({"lr": 0.0, "beta1": 0.9, "beta2": beta2}, [p])], [[[p]]])

    assert covers(case(0.9999990463256836)) and not covers(case(0.999))
    assert backend.implementation("adam@optax", "optax") == ("optax.adam", optax.__version__)
    assert jax.config.jax_enable_x64


def test_optax_accepts_out_of_domain_hyperparameters():
    """optax-accepts-any-hyperparameter: a negative lr, β₁ > 1 and a negative ε build and step."""
    theta = jnp.asarray(np.array([1.0], np.float32))
    tx = optax.adam(-1.0, b1=1.5, eps=-1.0)
    updates, _ = tx.update(theta, tx.init(theta), theta)
    assert float(optax.apply_updates(theta, updates)[0]) > 1.0  # up the gradient
    tx = optax.adafactor(-1.0, decay_rate=-0.5, clipping_threshold=-1.0, eps=-1e-3)  # adafactor too
    updates, _ = tx.update(theta, tx.init(theta), theta)
    assert np.isfinite(float(optax.apply_updates(theta, updates)[0]))


# --------------------------------------------------------------------------- Lion, Adan, AdEMAMix, Schedule-Free

def _exact(name: str, hyper: dict, theta: float, grads: list) -> list:
    """The exact θ after each step of spec ``name`` (the reference, rounded once to float64)."""
    import spec
    from reference.step import trajectory
    snaps = trajectory(spec.get(name), hyper, np.array([theta]), [np.array([g]) for g in grads])
    return [float(s.theta[0].rounded["float64"]) for s in snaps]


def _optax_run(tx, theta: float, grads: list) -> list:
    p = jnp.asarray([theta], jnp.float64)
    state, out = tx.init(p), []
    for g in grads:
        updates, state = tx.update(jnp.asarray([g], jnp.float64), state, p)
        p = optax.apply_updates(p, updates)
        out.append(float(p[0]))
    return out


@pytest.mark.parametrize("name", ["lion@optax", "adan@optax", "ademamix@optax", "schedulefree_adamw@optax",
                                  "adafactor@optax"])
def test_optax_defaults_are_the_dialect_specs(name):
    """The alias's own keyword defaults (read from its signature) equal the dialect spec's."""
    import spec
    got = backend.defaults(name)
    want = {h.name: h.default for h in spec.get(name).hyperparameters if h.name in got}
    assert got and {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in want.items()}


def test_optax_adan_weighs_the_gradient_difference_by_one_minus_b2():
    """optax-adan-difference-weight: from the second step on Optax's Adan is not the reference code's (spec adan):
    it weighs g − g_prev by 1 − b2 (0.08) where the reference code weighs it by b2 (0.92)."""
    hyper = {"lr": 0.1, "beta1": 0.98, "beta2": 0.92, "beta3": 0.99, "eps": 1e-8, "weight_decay": 0.0}
    grads = [1.0, -0.25, 0.5]
    got = _optax_run(optax.adan(0.1, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=0.0), 0.5, grads)
    reference_code = _exact("adan", {**hyper, "no_prox": False}, 0.5, grads)
    assert got == pytest.approx(_exact("adan@optax", {**hyper, "eps_root": 0.0}, 0.5, grads), rel=1e-12)
    assert got[0] == pytest.approx(reference_code[0], rel=1e-12)  # the first step has g − g_prev = 0
    assert abs(got[1] - reference_code[1]) > 0.05  # 0.3592 against 0.4197
    # the coefficient is the whole difference: with b2 = ½ (1 − b2 = b2) Optax is the reference code's update
    half = {**hyper, "beta2": 0.5}
    got_half = _optax_run(optax.adan(0.1, b1=0.98, b2=0.5, b3=0.99, eps=1e-8, eps_root=0.0), 0.5, grads)
    assert got_half == pytest.approx(_exact("adan", {**half, "no_prox": False}, 0.5, grads), rel=1e-12)


def test_optax_schedule_free_warm_up_leaves_the_first_step_without_a_z_step():
    """optax-schedule-free-warmup-lag: the base optimizer reads the warm-up schedule at its own count (0 at the
    first step: lr 0) and the weights at step_count (1): the first step moves nothing, where schedulefree's
    (spec schedulefree_adamw, γ₁ = lr/W) does."""
    grads = [1.0, -0.25, 0.5]
    got = _optax_run(optax.contrib.schedule_free_adamw(1.0, warmup_steps=4), 0.5, grads)
    assert got[0] == 0.5
    hyper = {"lr": 1.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "warmup_steps": 4}
    assert got == pytest.approx(_exact("schedulefree_adamw@optax", hyper, 0.5, grads), rel=1e-12)
    assert _exact("schedulefree_adamw", {**hyper, "r": 0.0}, 0.5, grads)[0] != 0.5


def test_optax_schedule_free_warmup_steps_0_is_a_learning_rate_of_0():
    """optax-schedule-free-warmup-0: warmup_steps=0 builds warmup_constant_schedule(0, lr, 0), a constant 0
    (polynomial_schedule holds init_value for transition_steps <= 0): nothing moves, ever.  None is no warm-up."""
    grads = [1.0, -0.25, 0.5]
    assert _optax_run(optax.contrib.schedule_free_adamw(1.0, warmup_steps=0), 0.5, grads) == [0.5, 0.5, 0.5]
    assert _optax_run(optax.contrib.schedule_free_adamw(1.0, warmup_steps=None), 0.5, grads)[0] != 0.5


def test_optax_lion_steps_nan_where_torch_sign_leaves_theta():
    """optax-lion-sign-nan: jnp.sign(NaN) is NaN, so a NaN gradient makes θ NaN; torch.sign(NaN) is 0 (spec lion,
    the reference code): θ keeps its value.  The dialect lion@optax states jnp's sign."""
    assert np.isnan(float(jnp.sign(jnp.asarray(np.nan))))
    got = _optax_run(optax.lion(0.1, weight_decay=0.0), 0.5, [np.nan])
    assert np.isnan(got[0])
    assert _exact("lion", {"lr": 0.1, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0}, 0.5, [1.0])[0] == 0.4


def test_optax_schedule_free_weights_underflow_in_float16():
    """optax-schedule-free-scalars-in-parameter-dtype: weight = max_lr² is a float16 scalar for float16 parameters:
    lr = 1e-4 gives 1e-8, which rounds to 0, so c = nan_to_num(0/0) = 0 at every step and x never leaves θ₀
    (exactly, c₁ = 1 and x₁ = z₁)."""
    tx = optax.contrib.schedule_free_adamw(1e-4)
    p = jnp.asarray([0.01], jnp.float16)
    state = tx.init(p)
    for _ in range(3):
        updates, state = tx.update(jnp.asarray([1.0], jnp.float16), state, p)
        p = optax.apply_updates(p, updates)
    assert float(state.weight_sum) == 0.0 and float(state.max_lr) > 0
    x = optax.contrib.schedule_free_eval_params(state, p)
    assert abs(float(x[0]) - 0.01) < 1e-5  # x stayed at θ₀ (to the rounding of its recomputation)
    assert float(state.z[0]) < 0.01 - 2.5e-4  # while z took three steps of about lr each


def test_optax_schedule_free_weight_sum_stalls_in_bfloat16():
    """The same entry: weight_sum is a bfloat16 scalar for bfloat16 parameters; with lr = 1 each weight is 1 and
    the sum stops at 256 (256 + 1 rounds to 256), so c = 1/256 from then on instead of 1/t."""
    tx = optax.contrib.schedule_free_adamw(1.0)
    p = jnp.asarray([0.5], jnp.bfloat16)

    def step(carry, _):
        p, state = carry
        updates, state = tx.update(jnp.zeros_like(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    (_, state), _ = jax.lax.scan(step, (p, tx.init(p)), None, length=300)
    assert float(state.weight_sum) == 256.0  # exactly 300


def test_optax_schedule_free_warm_up_learning_rate_is_float32():
    """optax-schedule-free-warmup-float32-lr: the warm-up schedule divides an int32 count, so its learning rates
    are float32 even with jax_enable_x64 and float64 parameters."""
    sched = optax.warmup_constant_schedule(init_value=0, peak_value=0.05, warmup_steps=3)
    value = sched(jnp.asarray(1, jnp.int32))
    assert value.dtype == jnp.float32 and float(value) != 0.05 / 3
    assert float(sched(jnp.asarray(5, jnp.int32))) == float(np.float32(0.05)) != 0.05  # after the warm-up too


def test_optax_lamb_float16_bias_correction_reciprocal_reaches_the_whole_tensor():
    """optax-float16-bias-correction-reciprocal in optax.lamb: b2 = 0.99999 gives 1 − b2 = 1e-5 < 2⁻¹⁶ at the first
    step.  One element with v = 0 (g = 0) has v̂ = 0·inf = NaN, and through ‖u‖ every element of the tensor turns
    NaN; with v > 0 everywhere v̂ = inf, u = 0 and θ does not move.  The spec (lamb@optax) moves θ by lr·r·u."""
    theta = jnp.asarray(np.array([1.0, -2.0], np.float16))
    tx = optax.lamb(0.1, b2=0.99999)
    updates, _ = tx.update(jnp.asarray(np.array([0.5, 0.0], np.float16)), tx.init(theta), theta)
    assert np.all(np.isnan(np.asarray(optax.apply_updates(theta, updates), dtype=np.float64)))
    updates, _ = tx.update(jnp.asarray(np.array([0.5, 0.25], np.float16)), tx.init(theta), theta)
    assert np.asarray(optax.apply_updates(theta, updates), dtype=np.float64).tolist() == [1.0, -2.0]


# --------------------------------------------------------------------------- Adafactor (adafactor@optax)

def _optax_adafactor(theta, grads, dtype=jnp.float64, **kwargs):
    p = jnp.asarray(np.asarray(theta), dtype)
    tx = optax.adafactor(**kwargs)
    state = tx.init(p)
    for g in grads:
        updates, state = tx.update(jnp.asarray(np.asarray(g), dtype), state, p)
        p = optax.apply_updates(p, updates)
    return np.asarray(p, np.float64).reshape(-1), state


def _exact_adafactor(hyper, theta, grads, shape) -> np.ndarray:
    import spec
    from reference.step import trajectory
    snaps = trajectory(spec.get("adafactor@optax"), hyper, np.asarray(theta, np.float64).reshape(shape),
                       [np.asarray(g, np.float64).reshape(shape) for g in grads])
    return np.array([float(x.rounded["float64"]) for x in np.asarray(snaps[-1].theta, dtype=object).reshape(-1)])


@pytest.mark.parametrize("kwargs, hyper", [
    (dict(learning_rate=0.1, decay_rate=1.0), dict(lr=0.1, decay_rate=1.0)),
    (dict(learning_rate=0.1, decay_rate=1.0, momentum=0.9, weight_decay_rate=0.01, clipping_threshold=0.5,
          multiply_by_parameter_scale=False, dtype_momentum=jnp.float64),  # its default, float32: a dialect
     dict(lr=0.1, decay_rate=1.0, momentum=0.9, weight_decay=0.01, clip_threshold=0.5,
          multiply_by_parameter_scale=False)),
])
@pytest.mark.parametrize("shape", [(3,), (128, 130)])
def test_adafactor_optax_is_its_dialect(kwargs, hyper, shape):
    """float64, two steps at c = 1 (β̂ₜ = 1 − 1/t, exact in float32, so finding 69 stays out): Optax's θ within a
    few ulps of the dialect's exact θ, a vector's whole moment and a 128 × 130 matrix's factored one."""
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(2)]
    got, _ = _optax_adafactor(theta, grads, **kwargs)
    np.testing.assert_allclose(got, _exact_adafactor(hyper, theta, grads, shape), rtol=1e-12, atol=1e-300)


def test_optax_adafactor_float16_zero_gradient_is_nan_everywhere():
    """Finding 68: ε = 1e-30 rounds to 0 in float16, so an element with
    g = 0 gets 0·0^(−½) = NaN, and the block RMS clip spreads it to every element of the tensor.  In float32 (and
    the dialect's exact arithmetic) the zero gradient leaves the element and the rest steps."""
    got, state = _optax_adafactor([1.0, 2.0], [[0.0, 1.0]], jnp.float16, learning_rate=0.01)
    assert np.isnan(got).all()  # fixed: [1.0, 1.99...]
    assert np.asarray(state[0].v, np.float64)[0] == 0.0  # the statistic g² + ε of g = 0: 0 in float16
    right, _ = _optax_adafactor([1.0, 2.0], [[0.0, 1.0]], jnp.float32, learning_rate=0.01)
    assert right[0] == 1.0 and right[1] < 2.0
    one = np.zeros((128, 128))
    one[0, 0] = 1.0  # rows and columns 1–127 get only zeros: their factor R or C is 0 in float16
    big, _ = _optax_adafactor(np.ones((128, 128)), [one], jnp.float16, learning_rate=0.01)  # factored too
    assert np.isnan(big).all()


def test_optax_adafactor_float64_decay_is_float32():
    """Finding 69: _decay_rate_pow casts t to float32, so a float64 second moment is averaged with
    β̂₂ = 1 − 2^(−0.8) rounded to float32: 1.8e-8 relative off at step 2, 1.1·10⁸ float64 ulps."""
    _, state = _optax_adafactor([1.0], [[1.0], [3.0]], jnp.float64, learning_rate=0.01)
    v = float(np.asarray(state[0].v)[0])
    exact = 1 + (1 - (1 - 2.0 ** -0.8)) * 8  # β̂·1 + (1 − β̂)·9 with β̂ = 1 − 2^(−0.8)
    b32 = float(np.float32(1) - np.float32(2.0) ** np.float32(-0.8))
    assert v == b32 * (1 + 1e-30) + (1 - b32) * (9 + 1e-30)  # fixed: v == exact within an ulp or two
    assert abs(v - exact) > 1e6 * np.spacing(exact)


def _adafactor_case(shape, steps, dtype="float16", seed=0, **hyper):
    import spec
    from conformance.backend import Case, Group
    from conformance.strategies import bulk_array
    h = {x.name: x.default for x in spec.get("adafactor@optax").hyperparameters}
    h.update({"lr": 0.01, **hyper})
    p = bulk_array(dtype, shape, seed, ())
    grads = [[[bulk_array(dtype, shape, seed + 1 + s, ())]] for s in range(steps)]
    return Case("adafactor@optax", dtype, [Group(h, [p])], grads)


@pytest.mark.parametrize("shape, kept", [
    ((3,), {"v": (3,)}),
    ((4, 5), {"v": (4, 5)}),  # a matrix too small to factor keeps the whole moment
    ((128, 130), {"v_row": (128, 1), "v_col": (1, 130)}),
    ((130, 128), {"v_row": (130, 1), "v_col": (1, 128)}),  # the largest axis second-to-last: Optax's v_row is v_col
])
def test_optax_backend_reports_adafactor_state_in_the_dialects_shapes(shape, kept):
    """The backend leaves out Optax's (1,) placeholders and reports v_row (the mean of g² + ε over the last axis)
    and v_col (over the second-to-last) in the spec's keepdim shapes, whichever of the two is Optax's largest."""
    case = _adafactor_case(shape, 1, "float32")
    state = backend.run(case)[0].state[0][0]
    assert {k: np.shape(v) for k, v in state.items() if k != "step"} == kept and state["step"] == 1.0
    g = np.asarray(case.grads[0][0][0], np.float64)
    if "v_row" in kept:  # one step: β̂₁ = 0, each factor is its mean
        np.testing.assert_allclose(state["v_row"], np.mean(g * g, axis=-1, keepdims=True), rtol=1e-5)
        np.testing.assert_allclose(state["v_col"], np.mean(g * g, axis=-2, keepdims=True), rtol=1e-5)
    factored = backend.run(_adafactor_case(shape, 1, "float32", factored=False))[0].state[0][0]
    assert set(factored) == {"step", "v"}


def test_optax_backend_adafactor_lr_1_then_another():
    """lr = 1 is Optax's default None (no scaling); the backend passes 1.0, the same values, so that a case changing
    lr between steps keeps a chain of the same structure (None drops scale_by_learning_rate: Optax's chain then
    refuses the state).  Found by the conformance run: "The number of updates and states has to be the same"."""
    import dataclasses
    case = dataclasses.replace(_adafactor_case((3,), 2, "float32", lr=1.0), lrs=[[None], [0.5]])
    got = backend.run(case)
    p = jnp.asarray(case.groups[0].params[0])
    tx = optax.adafactor()  # learning_rate=None
    updates, _ = tx.update(jnp.asarray(case.grads[0][0][0]), tx.init(p), p)
    assert np.array_equal(got[0].params[0][0], np.asarray(optax.apply_updates(p, updates)))
    assert np.all(np.isfinite(got[1].params[0][0]))


def test_optax_backend_adafactor_factored_case_conforms():
    """The suite's drawn shapes are never factored (both of the two largest dimensions must be ≥ 128; a spec that
    reduces draws small tensors for the exact engine): one float16 128 × 128 case of two steps, with momentum, run
    through the backend and checked, θ and the factored state, against the dialect."""
    from conformance.check import check
    case = _adafactor_case((128, 128), 2, momentum=0.9)
    report = check(case, backend.run(case), "trajectory")
    assert report.ok, report.summary()


def test_optax_adafactor_predicates():
    """The two entries' predicates: finding 68 covers a float16 zero square that can meet a zero statistic (the
    tensor's first step, or a decay that lets β̂ₜ·v underflow), finding 69 a second step with decay_rate ≠ 0."""
    from dataclasses import replace
    from conformance.backend import Group
    from conformance.deviation_predicates import (_optax_adafactor_decay_rate_inexact_in_float32 as float32_decay,
                                                  _optax_adafactor_float16_square_is_zero as zero_square)
    case = _adafactor_case((3,), 2)
    assert not zero_square(case) and float32_decay(case)
    case.grads[0][0][0][1] = np.float16(2.0 ** -13)  # g² = 2⁻²⁶ rounds to 0 at the first step: v₁ = 0
    assert zero_square(case)
    assert not np.isfinite(np.asarray(backend.run(case)[0].params[0][0], np.float64)).all()  # what Optax gives
    later = _adafactor_case((3,), 2)
    later.grads[0][0][0][1] = np.float16(1.0)
    later.grads[1][0][0][1] = np.float16(2.0 ** -13)  # a zero square after v₁ = 1: v₂ = β̂₂ > 0, no NaN
    assert not zero_square(later)
    assert np.isfinite(np.asarray(backend.run(later)[-1].params[0][0], np.float64)).all()
    later.grads[0][0][0][1] = np.float16(2.0 ** -12)  # v₁ = 2⁻²⁴, the least subnormal: β̂₂·v₁ rounds to 0
    assert zero_square(later)
    later.grads[0][0][0][1] = np.float16(1.0)
    assert zero_square(replace(later, groups=[Group({**later.groups[0].hyper, "decay_rate": 0.0},
                                                    later.groups[0].params)]))  # β̂ₜ = 0 at every step
    assert not float32_decay(_adafactor_case((3,), 1)) and not float32_decay(_adafactor_case((3,), 2, decay_rate=0.0))
