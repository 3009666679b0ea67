"""Reproductions of what the suite found in timm's optimizers (docs/measured/third-party.md, findings 81-82).

timm 1.0.29's optimizer modules are loaded by ``conformance.adapters.timm_optim`` (``import timm`` needs
torchvision).  Each test states the finding against the spec's exact value (``reference.step``) or the spec's
domain, never against timm itself, so it fails once timm is fixed: then update the pin, the record and this file.
Without timm installed (CI does not install it) the tests skip."""
from __future__ import annotations

import importlib.util
from importlib import metadata

import numpy as np
import pytest

import spec
from reference.step import trajectory

torch = pytest.importorskip("torch")
if importlib.util.find_spec("timm") is None:
    pytest.skip("timm is not installed (pip install --no-deps timm==1.0.29)", allow_module_level=True)
from conformance.adapters import timm_optim  # noqa: E402  (loads timm's optimizer modules, not timm's models)
PINNED = "1.0.29"


@pytest.fixture(autouse=True)
def _pinned():
    assert metadata.version("timm") == PINNED, (
        f"timm {metadata.version('timm')} installed; these findings were measured on {PINNED}: rerun the audit "
        "(docs/measured/third-party.md) and update the pin")


def test_lion_and_adan_accept_a_negative_weight_decay():
    """Finding 81: the spec's domains refuse λ < 0; timm's constructors check lr and the betas, not λ."""
    assert not spec.get("lion").hyper("weight_decay").accepts(-1.0)
    assert not spec.get("adan").hyper("weight_decay").accepts(-1.0)
    p = torch.nn.Parameter(torch.zeros(1))
    timm_optim.Lion([p], weight_decay=-1.0)
    timm_optim.Adan([p], weight_decay=-1.0)


def test_adan_bias_corrects_a_parameter_with_its_groups_step_count():
    """Finding 82: a parameter whose first gradient comes at the group's second step is corrected with t = 2."""
    a, b = (torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) for _ in range(2))
    opt = timm_optim.Adan([a, b], lr=0.1)
    a.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    b.grad = torch.ones(1, dtype=torch.float64)
    a.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    s = spec.get("adan")
    rows = trajectory(s, s.complete({"lr": 0.1}), np.zeros(1), [None, np.ones(1)], formats=("float64",))
    exact = float(rows[-1].rounded("theta", "float64")[0])  # b's own first step: t = 1
    assert abs(exact + 0.1) < 1e-6
    assert abs(b.item() - exact) > 1e-3
