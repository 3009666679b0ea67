"""Hugging Face transformers 5.18.0's Adafactor (``transformers.optimization.Adafactor``) against its dialect
spec ``adafactor@transformers``, reproduced directly; each finding's test fails once the library changes.  The
audit and the findings: docs/measured/third-party.md ("Adafactor").  CI does not install transformers: every test
here skips there."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers", reason="transformers is not installed (the audits extra; CI does not have it)")
from transformers.optimization import Adafactor as HFAdafactor  # noqa: E402

from conformance.adapters.transformers import Adafactor  # noqa: E402


def _exact(hyper: dict, theta, grads) -> np.ndarray:
    """The dialect's exact θ after the last step (the reference, rounded once to float64)."""
    import spec
    from reference.step import trajectory
    snaps = trajectory(spec.get("adafactor@transformers"), hyper, np.asarray(theta, np.float64),
                       [np.asarray(g, np.float64) for g in grads])
    return np.array([float(x.rounded["float64"]) for x in np.asarray(snaps[-1].theta, dtype=object).reshape(-1)])


def _hf(cls, theta, grads, **kwargs) -> tuple:
    p = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
    opt = cls([p], **kwargs)
    for grad in grads:
        p.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
    return p.detach().numpy().reshape(-1), opt.state[p]


@pytest.mark.parametrize("kwargs, hyper", [
    ({}, {}),  # relative step, parameter scale, no β₁
    (dict(lr=0.05, relative_step=False, scale_parameter=False, beta1=0.9, weight_decay=0.1, clip_threshold=0.5),
     dict(lr=0.05, relative_step=False, scale_parameter=False, beta1=0.9, weight_decay=0.1, clip_threshold=0.5)),
    (dict(warmup_init=True, eps=(1e-3, 1e-3), decay_rate=-0.5),
     dict(warmup_init=True, eps1=1e-3, decay_rate=-0.5)),
])
@pytest.mark.parametrize("theta, grads", [
    ([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]], [[[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]] * 2 + [[[0.1, 0.2, 0.3],
                                                                                            [-4.0, 1.0, 0.0]]]),
    ([0.5, -1.0, 2.0], [[1.0, 0.0, -3.0], [0.5, 0.5, 2.0]]),
])
def test_the_dialect_is_what_transformers_computes(kwargs, hyper, theta, grads):
    """The class's θ in float64 within a few ulps of the dialect's exact θ, factored and whole, every option."""
    got, _ = _hf(HFAdafactor, theta, grads, **kwargs)
    want = _exact(hyper, theta, grads)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


def test_the_adapter_reports_torchs_keepdim_shapes_and_steps_identically():
    """conformance.adapters.transformers: the factors in (…, R, 1) and (…, 1, C) between steps, the same θ."""
    theta, grads = np.arange(24.0).reshape(2, 3, 4) / 7 - 1, [np.cos(np.arange(24.0)).reshape(2, 3, 4)] * 3
    want, plain = _hf(HFAdafactor, theta, grads)
    got, state = _hf(Adafactor, theta, grads)
    assert np.array_equal(got, want)
    assert state["exp_avg_sq_row"].shape == (2, 3, 1) and state["exp_avg_sq_col"].shape == (2, 1, 4)
    assert torch.equal(state["exp_avg_sq_row"].reshape(2, 3), plain["exp_avg_sq_row"])
    assert Adafactor.conformance_implementation()[0] == "transformers.optimization:Adafactor"


@pytest.mark.parametrize("kwargs", [dict(lr=-1.0, relative_step=False), dict(eps=(-1.0, 1e-3)),
                                    dict(clip_threshold=-1.0), dict(decay_rate=0.5), dict(beta1=1.5),
                                    dict(weight_decay=-0.1)])
def test_transformers_adafactor_takes_out_of_domain_hyperparameters(kwargs):
    """transformers-adafactor-unchecked-hyperparameters: each is built and stepped without an error."""
    p = torch.nn.Parameter(torch.ones(2, 2))
    opt = HFAdafactor([p], **kwargs)
    p.grad = torch.ones(2, 2)
    opt.step()


def test_transformers_adafactor_refuses_what_it_checks():
    """The two checks it has: lr with relative_step, warmup_init without it (the dialect's constraint)."""
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError):
        HFAdafactor([p], lr=0.01)
    with pytest.raises(ValueError):
        HFAdafactor([p], lr=0.01, relative_step=False, warmup_init=True)


def test_the_adapter_passes_lr_as_the_spec_reads_it():
    """relative_step: None whatever the harness passes (transformers never reads it and refuses a number);
    without it a number, the spec's lr = 0 (which the harness turns into None) as 0.0, per group."""
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = Adafactor([{"params": [p], "lr": 0.5}, {"params": [q], "lr": None, "relative_step": False}])
    assert opt.param_groups[0]["lr"] is None and opt.param_groups[1]["lr"] == 0.0
    assert Adafactor([p], lr=0.01).param_groups[0]["lr"] is None
    q.grad = torch.ones(2)
    opt.step()
    assert torch.equal(q.detach(), torch.ones(2))  # lr = 0: θ unchanged


def test_transformers_adafactor_resume_rounds_its_float32_state_to_float16():
    """Finding 73 (transformers-adafactor-resume-rounds-float32-state): a float16 parameter's factors are float32
    (the step runs in float32), and torch's load_state_dict casts floating-point state to the parameter's dtype,
    so a save/restore between two steps changes the statistics: the resumed factor is not the uninterrupted one.
    Fixed (e.g. an override of Optimizer._process_value_according_to_param_policy keeping float32): equal."""
    grads = [torch.tensor([[0.1, 0.2], [0.3, 0.7]]), torch.tensor([[0.3, -0.1], [0.2, 0.5]])]

    def run(resume: bool):
        p = torch.nn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float16))
        opt = HFAdafactor([p])
        for i, g in enumerate(grads):
            if resume and i == 1:
                saved = opt.state_dict()
                opt = HFAdafactor([p])
                opt.load_state_dict(saved)
                assert opt.state[p]["exp_avg_sq_row"].dtype == torch.float16  # fixed: float32, as it was saved
            p.grad = g.half()
            opt.step()
        return opt.state[p]["exp_avg_sq_row"]

    uninterrupted, resumed = run(False), run(True)
    assert uninterrupted.dtype == torch.float32
    assert not torch.equal(uninterrupted, resumed.float())  # fixed: equal (0.2068 vs 0.2067 here)
