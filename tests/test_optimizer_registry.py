"""conformance/optimizers.py against the spec and the installed frameworks.

Every spec has exactly one record and every record a spec; each record's example hyperparameters are ones
its spec accepts and its invalid ones are refused; torch.optim has the class a record names, with the
error and the paths the record states; the NumPy backend implements every optimizer.
"""
from __future__ import annotations

import inspect

import pytest
import torch

import spec
from conformance import optimizers
from conformance.backends.numpy_backend import backend as numpy_backend
from conformance.optimizers import ALL as OPTIMIZERS, CAPTURABLE, FUSED, torch_kwargs

NAMES = tuple(OPTIMIZERS)  # every record: the element-wise ones and those with observed state (Muon)
TORCH_NAMES = tuple(n for n in NAMES if OPTIMIZERS[n].torch)


def _torch_class(name):
    return getattr(torch.optim, OPTIMIZERS[name].torch)


def _torch_kwargs(name, hyper: dict) -> dict:
    """The spec's defaults updated by ``hyper``, as torch's keyword arguments (``betas=(β₁, β₂)``, ``etas``, ...,
    and the record's own ``torch_args``: Muon's adjust_lr_fn)."""
    kw = torch_kwargs({**spec.get(name).defaults, **hyper})
    convert = OPTIMIZERS[name].torch_args
    return convert(kw) if convert else kw


def _construct(name, hyper: dict):
    nd = spec.get(name).ndims[0] if spec.get(name).ndims else 1  # Muon: a matrix
    p = torch.zeros((1,) * (nd - 1) + (2,), dtype=torch.float64, requires_grad=True)
    return _torch_class(name)([p], **_torch_kwargs(name, hyper))


def _show(hyper) -> str:
    return ",".join(f"{k}={v}" for k, v in hyper.items())


def test_one_record_per_spec_and_one_spec_per_record():
    assert set(optimizers.OPTIMIZERS) == set(spec.OPTIMIZERS)
    assert set(optimizers.OBSERVED) == set(spec.OBSERVED_OPTIMIZERS)
    assert set(OPTIMIZERS) == set(spec.OPTIMIZERS) | set(spec.OBSERVED_OPTIMIZERS)
    assert all(info.name == key for key, info in OPTIMIZERS.items())
    assert optimizers.names() == tuple(optimizers.OPTIMIZERS)
    assert all(spec.get(n).observed for n in spec.OBSERVED_OPTIMIZERS)
    assert not any(spec.get(n).observed for n in spec.OPTIMIZERS)


#: torch.optim classes with no spec yet, and why; a class that gets one must leave this list (Muon left it: its record
#: is in conformance.optimizers.OBSERVED, its spec in spec.OBSERVED_OPTIMIZERS)
NOT_SPECIFIED: dict = {}


def test_every_torch_optimizer_has_a_spec_or_a_stated_reason():
    """Each torch.optim.Optimizer class of the installed torch has an element-wise record, a closure-driven
    spec (``spec.CLOSURE_OPTIMIZERS``: LBFGS, checked by conformance/test_lbfgs.py), or an entry of
    NOT_SPECIFIED."""
    classes = {n for n, c in vars(torch.optim).items()
               if isinstance(c, type) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer}
    recorded = {info.torch for info in OPTIMIZERS.values() if info.torch}
    closure = {s.torch_class for s in spec.CLOSURE_OPTIMIZERS.values()}
    assert not recorded & closure
    assert classes - recorded - closure == set(NOT_SPECIFIED)
    for s in spec.CLOSURE_OPTIMIZERS.values():
        assert spec.get(s.name) is s and s.name not in OPTIMIZERS


def test_get_names_the_known_optimizers():
    assert optimizers.get("adam") is OPTIMIZERS["adam"]
    with pytest.raises(KeyError, match="no optimizer named 'sophia'.*known: sgd, "):
        optimizers.get("sophia")


@pytest.mark.parametrize("name", NAMES)
def test_example_hyperparameters_are_valid(name):
    info, s = OPTIMIZERS[name], spec.get(name)
    examples = [info.hyper, *({**info.hyper, **b} for b in info.branches), *info.edge, info.drift_hyper]
    examples += [h for pair in info.group_pairs for h in pair]
    for hyper in examples:
        s.complete(dict(hyper))  # raises InvalidHyperparameter otherwise
    assert info.hyper and info.group_pairs, f"{name}: the tests need example hyperparameters"
    assert all(len(pair) == 2 for pair in info.group_pairs)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_examples_are_refused_by_the_spec(name):
    info, s = OPTIMIZERS[name], spec.get(name)
    for invalid in info.invalid:
        with pytest.raises(spec.InvalidHyperparameter):
            s.complete(dict(invalid.hyper))
    # every bounded domain and every constraint has an example (test_properties draws its own for the domains)
    if s.constraints:
        assert info.constraint_violations, f"{name}: the spec has constraints but no invalid example breaks them"
    # Each invalid example names every hyperparameter its refusal depends on (test_properties sets it over
    # drawn hyperparameters): it stays refused over every example of the record.
    examples = [info.hyper, *({**info.hyper, **b} for b in info.branches), *info.edge]
    examples += [h for pair in info.group_pairs for h in pair]
    for invalid in info.invalid:
        for example in examples:
            with pytest.raises(spec.InvalidHyperparameter):
                s.complete({**example, **invalid.hyper})


@pytest.mark.parametrize("name", NAMES)
def test_scheduled_optimizers_have_a_momentum_to_cycle(name):
    info, s = OPTIMIZERS[name], spec.get(name)
    if info.scheduled:  # CyclicLR/OneCycleLR cycle `momentum` or `betas[0]`
        assert {"momentum", "beta1"} & {h.name for h in s.hyperparameters}


@pytest.mark.parametrize("name", NAMES)
def test_numpy_backend_implements_every_optimizer(name):
    assert numpy_backend.paths(name) == ("for-loop",)


@pytest.mark.parametrize("name", NAMES)
def test_torch_class_exists(name):
    """The spec's ``torch_class`` names a torch.optim.Optimizer of the installed torch (or no torch class at all,
    and then no torch paths)."""
    info = OPTIMIZERS[name]
    if info.torch is None:
        assert info.torch_paths == ()
        return
    assert isinstance(_torch_class(name), type) and issubclass(_torch_class(name), torch.optim.Optimizer)


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_torch_paths_match_the_signature(name):
    params = inspect.signature(_torch_class(name).__init__).parameters
    assert ("foreach" in params) == OPTIMIZERS[name].foreach
    assert set(OPTIMIZERS[name].torch_paths) <= {FUSED, CAPTURABLE}
    assert (FUSED in OPTIMIZERS[name].torch_paths) == ("fused" in params)
    assert (CAPTURABLE in OPTIMIZERS[name].torch_paths) == ("capturable" in params)


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_torch_refuses_the_invalid_examples_with_the_recorded_error(name):
    for invalid in OPTIMIZERS[name].invalid:
        if invalid.torch_error is None:  # torch's check is looser than the spec's here: it accepts them
            _construct(name, dict(invalid.hyper))
        else:
            with pytest.raises(invalid.torch_error):
                _construct(name, dict(invalid.hyper))
    for hyper in (OPTIMIZERS[name].hyper, *OPTIMIZERS[name].edge):
        _construct(name, dict(hyper))

