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
