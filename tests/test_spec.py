"""The spec as data, checked against torch 2.13: defaults, domains, and the well-formedness of every rule."""
from __future__ import annotations

import inspect
import math

import pytest
import sympy as sp
import torch

import spec
from conformance import optimizers as registry
from conformance.optimizers import TORCH_PAIRS
from reference.program import compile_rule
from spec.core import Assign

SPECS = tuple(spec.OPTIMIZERS.values())
SPEC_IDS = tuple(spec.OPTIMIZERS)
# The specs of a torch.optim class: their defaults and domains are torch's.
TORCH_SPECS = tuple(s for s in SPECS if s.torch_class.startswith("torch.optim."))
TORCH_IDS = tuple(s.name for s in TORCH_SPECS)
TORCH_ONLY = {"self", "params", "foreach", "fused", "capturable", "differentiable"}  # implementation options
PAIRS = TORCH_PAIRS  # torch's tuple arguments under the spec's names of their entries


def torch_class(s):
    module, _, name = s.torch_class.rpartition(".")
    assert module == "torch.optim", s.torch_class
    return getattr(torch.optim, name)


def torch_defaults(s) -> dict:
    """torch's constructor defaults under the spec's names (``betas=(b1, b2)`` → beta1, beta2; ``PAIRS``)."""
    out = {}
    for name, p in inspect.signature(torch_class(s).__init__).parameters.items():
        if name in TORCH_ONLY:
            continue
        assert p.default is not inspect.Parameter.empty, f"{s.torch_class}: {name} has no default"
        if name in PAIRS and isinstance(p.default, tuple):  # Adam's eps is a number, Adafactor's a pair
            out.update(zip(PAIRS[name], p.default))
        else:
            out[name] = p.default
    return out


def torch_kwargs(s, hyper: dict) -> dict:
    return registry.torch_kwargs(hyper)


def torch_accepts(s, hyper: dict) -> bool:
    """Whether torch's constructor validation accepts ``hyper``.

    The parameter is float64: with float32, Adagrad's initial_accumulator_value = 1e300 passes
    validation and then fails filling the float32 ``sum`` (a RuntimeError about the tensor's
    dtype, not a rejected hyperparameter).
    """
    try:
        torch_class(s)([torch.zeros(2, dtype=torch.float64, requires_grad=True)], **torch_kwargs(s, hyper))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- defaults


@pytest.mark.parametrize("s", TORCH_SPECS, ids=TORCH_IDS)
def test_hyperparameters_are_torchs(s):
    fixed = {k for k, _ in s.fixed_keywords}  # a variant's keywords left at torch's defaults (sgd_sparse)
    assert set(s.defaults) | fixed == set(torch_defaults(s)) and not fixed & set(s.defaults)


@pytest.mark.parametrize("s", TORCH_SPECS, ids=TORCH_IDS)
def test_defaults_are_torchs(s):
    ours, theirs = s.defaults, torch_defaults(s)
    for name in ours:
        assert ours[name] == theirs[name], f"{s.name}.{name}: spec {ours[name]!r}, torch {theirs[name]!r}"
        assert isinstance(ours[name], bool) == isinstance(theirs[name], bool), f"{s.name}.{name}: flag or number"
        if not isinstance(ours[name], bool):
            assert s.hyper(name).accepts(ours[name]), f"{s.name}.{name}: default outside its own domain"


def test_adamw_has_no_decoupled_flag():
    assert "decoupled_weight_decay" not in spec.OPTIMIZERS["adamw"].defaults
    assert "decoupled_weight_decay" in spec.OPTIMIZERS["adam"].defaults


# --------------------------------------------------------------------------- domains

BOUNDARY_VALUES = (-1.0, -1e-300, 0.0, 1e-300, 0.5, 1.0 - 2.0 ** -53, 1.0, 1.0 + 2.0 ** -52, 2.0, 1e300)
DOMAIN_CASES = [
    pytest.param(s, h.name, x, id=f"{s.name}-{h.name}-{x!r}")
    for s in TORCH_SPECS for h in s.numeric for x in BOUNDARY_VALUES
]


@pytest.mark.parametrize("s, name, value", DOMAIN_CASES)
def test_domain_matches_torch_validation(s, name, value):
    hyper = {**s.defaults, name: value}
    expected = torch_accepts(s, hyper)
    if expected:
        assert s.complete({name: value})[name] == value
    else:
        with pytest.raises(spec.InvalidHyperparameter, match=name):
            s.complete({name: value})


@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("value", (math.inf, -math.inf, math.nan))
def test_spec_domains_are_finite(s, value):
    """The spec is stricter than torch here on purpose: no finite spec value comes of lr = inf (or nan)."""
    for h in s.numeric:
        with pytest.raises(spec.InvalidHyperparameter, match=h.name):
            s.complete({h.name: value})


@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_flags_must_be_bools(s):
    for h in s.flags:
        with pytest.raises(spec.InvalidHyperparameter, match=h.name):
            s.complete({h.name: 1})


def test_invalid_hyperparameter_is_a_value_error():
    assert issubclass(spec.InvalidHyperparameter, ValueError)
    with pytest.raises(spec.InvalidHyperparameter, match="nonsense"):
        spec.OPTIMIZERS["sgd"].complete({"nonsense": 1.0})


SGD_COMBINATIONS = [
    (dict(nesterov=True, momentum=0.0), False),
    (dict(nesterov=True, momentum=0.9, dampening=0.5), False),
    (dict(nesterov=True, momentum=0.9, dampening=-1e-300), False),
    (dict(nesterov=True, momentum=0.9), True),
    (dict(nesterov=False, momentum=0.0, dampening=0.5), True),
]


@pytest.mark.parametrize("hyper, valid", SGD_COMBINATIONS, ids=[str(h) for h, _ in SGD_COMBINATIONS])
def test_sgd_nesterov_combinations(hyper, valid):
    s = spec.OPTIMIZERS["sgd"]
    assert torch_accepts(s, {**s.defaults, **hyper}) == valid
    if valid:
        s.complete(hyper)
    else:
        with pytest.raises(spec.InvalidHyperparameter, match="nesterov"):
            s.complete(hyper)


# --------------------------------------------------------------------------- well-formed rules


@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_statements_are_well_formed(s):
    inputs = set(s.symbols().values())
    for flags in s.flag_combinations(tensor=True):  # every program, tensor flags too
        assigned = set()
        statements = s.statements(flags)
        assert statements, f"{s.name} {flags}: empty rule"
        for i, stmt in enumerate(statements):
            assert isinstance(stmt, Assign)
            assert isinstance(stmt.target, sp.Symbol), f"{s.name} {flags} #{i}: target {stmt.target!r}"
            unknown = stmt.expr.free_symbols - inputs - assigned
            assert not unknown, f"{s.name} {flags} #{i} ({stmt.target}): uses {unknown} before assigning them"
            assigned.add(stmt.target)
        assert spec.theta in assigned, f"{s.name} {flags}: θ is never updated"


@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_state_inits_use_only_hyperparameters(s):
    hyper_symbols = {h.symbol for h in s.numeric}
    for st in s.state:
        assert sp.sympify(st.init).free_symbols <= hyper_symbols, f"{s.name}.{st.name}: init {st.init}"


@pytest.mark.parametrize("s", SPECS, ids=SPEC_IDS)
def test_every_flag_combination_compiles(s):
    for flags in s.flag_combinations(tensor=True):
        program = compile_rule(s, flags)
        assert program.outputs[0] == "theta"
        assert dict(program.flags) == flags
