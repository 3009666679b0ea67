"""Keras 3.15.1 (torch backend) departures of its Lamb from its dialect spec ``lamb@keras``, reproduced through
``conformance.adapters.keras_torch`` against the spec's exact values; each test fails once Keras is fixed.
Evidence: docs/measured/third-party.md (LAMB) and docs/measured/known-deviations.md.  Skipped without Keras
(``pip install -e '.[keras]'``; CI does not install it)."""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
os.environ.setdefault("KERAS_BACKEND", "torch")  # before Keras is imported: its default backend is TensorFlow
pytest.importorskip("keras")
from conformance.adapters import keras_torch  # noqa: E402  (sets KERAS_BACKEND=torch before Keras loads)

import spec  # noqa: E402
from reference.step import trajectory  # noqa: E402

PINNED = "3.15.1"
LAMB = spec.get("lamb@keras")


@pytest.fixture(autouse=True)
def _pinned():
    import keras
    assert keras.__version__ == PINNED, f"Keras {keras.__version__}: these findings were measured on {PINNED}"


def _keras_lamb(theta, grads, dtype, **hyper):
    p = torch.nn.Parameter(torch.tensor(theta, dtype=dtype))
    opt = keras_torch.Lamb([p], **hyper)
    for g in grads:
        p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
    return p.detach().float().numpy().astype(np.float64)


def _exact(theta, grads, fmt, **hyper):
    rows = trajectory(LAMB, LAMB.complete(hyper), np.array(theta, dtype=np.float64),
                      [np.array(g, dtype=np.float64) for g in grads], formats=(fmt,))
    return rows[-1].rounded("theta", fmt).astype(np.float64)


def test_keras_lamb_bfloat16_never_moves_and_makes_zero_gradient_elements_nan():
    """bfloat16(0.999) = 1, so Keras's 1 − β₂ᵗ (computed in the variable's dtype) is 0 and v̂ = v/0: inf where v > 0
    (u = m̂/inf = 0: no step) and NaN where v = 0 (‖u‖ is then NaN; the ratio falls back to 1 and θ − lr·NaN).
    θ = [1, 1], g = [−1, 0] three times, lr = 0.01: Keras gives [1, NaN]; the spec [1.0234375, 1] in bfloat16."""
    got = _keras_lamb([1.0, 1.0], [[-1.0, 0.0]] * 3, torch.bfloat16, lr=0.01)
    exact = _exact([1.0, 1.0], [[-1.0, 0.0]] * 3, "bfloat16", lr=0.01)
    assert exact[0] > 1.02 and exact[1] == 1.0
    assert got[0] == 1.0 and np.isnan(got[1])


def test_keras_lamb_float16_norm_overflows_for_an_element_past_256():
    """‖θ‖ is ops.sqrt(ops.sum(ops.power(θ, 2))) in the variable's dtype: θ² overflows float16 for |θ| > 255.9, so
    ‖θ‖ = inf, the trust ratio inf, and θ ±inf.  θ = [300, 1], g = [1, 1], lr = 0.01: Keras [−inf, −inf]; the spec
    [297.75, −1.1211] in float16 (each element moves by lr·‖θ‖/√2 = 2.12)."""
    got = _keras_lamb([300.0, 1.0], [[1.0, 1.0]], torch.float16, lr=0.01)
    exact = _exact([300.0, 1.0], [[1.0, 1.0]], "float16", lr=0.01)
    assert np.all(np.isfinite(exact)) and abs(exact[0] - 297.88) < 0.2
    assert np.all(got == -np.inf)


def test_keras_lamb_float16_update_norm_overflows_for_a_large_tensor():
    """The same sum over u²: with |u| near 1 (Adam's direction), a float16 tensor of more than about 67,000 elements
    has Σu² > 65504, ‖u‖ = inf and trust ratio ‖θ‖/inf = 0: the layer never moves.  70,000 elements at 0.01,
    g = 1, lr = 0.01: the spec moves each to 0.0099 (0.0099029541 in float16); Keras leaves 0.010002136."""
    n = 70_000
    got = _keras_lamb([0.01] * n, [[1.0] * n], torch.float16, lr=0.01)
    assert np.all(got == np.float64(np.float16(0.01)))
    small = _keras_lamb([0.01] * 1_000, [[1.0] * 1_000], torch.float16, lr=0.01)  # Σu² ≈ 976: it moves
    assert np.all(small == np.float64(np.float16(0.0099)))


def test_keras_lamb_float64_moments_use_float32_constants():
    """keras-lamb-float32-constants: update_step multiplies by the Python float 1 − β₁, which Keras's ops turn into
    a float32 tensor: g = −1, β₁ = 0.9 gives m = −float32(0.1) = −0.10000000149011612 in a float64 variable, where
    the spec's m is −0.1 (float64).  Likewise v = 0.1·g² with β₂ = 0.9."""
    p = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    opt = keras_torch.Lamb([p], lr=0.5, eps=0.1, betas=(0.9, 0.9))
    p.grad = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    opt.step()
    f32 = float(np.float32(0.1))
    assert f32 != 0.1
    assert opt.state[p]["exp_avg"].tolist() == [-f32, 0.0]
    assert opt.state[p]["exp_avg_sq"].tolist() == [f32, 0.0]


@pytest.mark.parametrize("hyper", [dict(betas=(1.5, 0.999)), dict(betas=(0.9, -0.001)), dict(eps=-0.001),
                                   dict(weight_decay=-0.001)])
def test_keras_lamb_accepts_any_hyperparameter(hyper):
    """keras-lamb-lion-unchecked-hyperparameters: Keras's Lamb constructor checks none of its arguments; the spec's
    domains are β in [0, 1), ε ≥ 0, λ ≥ 0."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float32))
    opt = keras_torch.Lamb([p], lr=0.01, **hyper)
    p.grad = torch.tensor([1.0, -1.0], dtype=torch.float32)
    opt.step()  # builds the Keras optimizer and steps, no error


@pytest.mark.parametrize("hyper", [dict(betas=(0.9, 1.5)), dict(weight_decay=-0.001)])
def test_keras_lion_checks_only_beta1(hyper):
    """keras-lamb-lion-unchecked-hyperparameters: Keras's Lion refuses β₁ outside (0, 1] (at construction, which the
    adapter now runs per group) and takes β₂ = 1.5 or λ < 0."""
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float32))
    with pytest.raises(ValueError):
        keras_torch.Lion([p], lr=0.01, betas=(0.0, 0.99))
    opt = keras_torch.Lion([p], lr=0.01, **hyper)
    p.grad = torch.tensor([1.0, -1.0], dtype=torch.float32)
    opt.step()


@pytest.mark.parametrize("cls, hyper", [
    ("Adam", dict(betas=(1.5, 0.999))), ("Adam", dict(eps=-0.001)), ("AdamW", dict(weight_decay=-0.001)),
    ("SGD", dict(weight_decay=-0.001)), ("RMSprop", dict(alpha=-0.001)), ("RMSprop", dict(momentum=-0.001)),
    ("Adagrad", dict(initial_accumulator_value=-0.001)), ("Adamax", dict(betas=(0.9, 1.5))),
    ("Nadam", dict(eps=-0.001)), ("Adadelta", dict(rho=1.5)),
])
def test_keras_optimizers_accept_out_of_domain_hyperparameters(cls, hyper):
    """keras-unchecked-hyperparameters (finding 109): the spec's domains are β, ρ in [0, 1), ε, λ, momentum and the
    initial accumulator ≥ 0; Keras's constructors and first step take these values (SGD checks its momentum)."""
    for name, value in hyper.items():
        values = value if isinstance(value, tuple) else (value,)
        names = ("beta1", "beta2") if name == "betas" else (name,)
        assert not all(spec.get(f"{cls.lower()}@keras").hyper(n).accepts(v) for n, v in zip(names, values))
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float32))
    opt = getattr(keras_torch, cls)([p], lr=0.01, **hyper)
    p.grad = torch.tensor([1.0, -1.0], dtype=torch.float32)
    opt.step()  # builds the Keras optimizer and steps, no error
    with pytest.raises(ValueError):
        keras_torch.SGD([p], lr=0.01, momentum=-0.5)  # the one check: SGD's momentum
