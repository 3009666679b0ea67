"""``--hold SPEC:name=value``: an --optimizer class without a keyword for a spec hyperparameter is audited with it
held at what the class's code does.  The strategies (plain and boundary cases) draw only the held value, the torch
backend does not pass it (tests/test_torch_backend.py), and a failure's reproduction replays with it."""
from __future__ import annotations

import re
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import spec
from conformance import plugin, strategies
from conformance.backend import Case, Group
from conformance.branches import boundary_cases
from conformance.replay import reproduction

HELD = {"adam": {"maximize": False, "decoupled_weight_decay": True, "amsgrad": False}}


@contextmanager
def held():
    """``HELD`` in force, as ``--hold`` sets it (in place: other modules import the dict itself)."""
    saved = dict(strategies.HELD)
    strategies.HELD.clear()
    strategies.HELD.update(HELD)
    try:
        yield
    finally:
        strategies.HELD.clear()
        strategies.HELD.update(saved)


@settings(max_examples=25, deadline=None, database=None)
@given(data=st.data())
def test_held_hyperparameters_are_drawn_only_at_their_value(data):
    with held():
        case = data.draw(strategies.cases(spec.get("adam"), "float32"))
    for hyper, _ in case.groups:
        assert {k: hyper[k] for k in HELD["adam"]} == HELD["adam"], hyper


@settings(max_examples=10, deadline=None, database=None)
@given(data=st.data())
def test_boundary_cases_keep_held_values_and_skip_the_boundaries_they_exclude(data):
    with held():
        case = data.draw(boundary_cases(spec.get("adam"), "float32"))
    for hyper, _ in case.groups:
        assert {k: hyper[k] for k in HELD["adam"]} == HELD["adam"], hyper


def test_reproduction_carries_hyper_map_and_holds():
    p = np.zeros(1, dtype=np.float32)
    case = Case("adam", "float32", [Group(spec.get("adam").complete({}), [p])], [[[p]]])
    text = reproduction(case, "torch-cpu", "custom", "trajectory", {"adam": "mypkg:Adam"},
                        hyper_map={"adam": {"eps": "epsilon"}}, holds=HELD)
    assert "hyper_map={'adam': {'eps': 'epsilon'}}" in text
    assert "holds={'adam': {'maximize': False, 'decoupled_weight_decay': True, 'amsgrad': False}}" in text
    plain = reproduction(case, "torch-cpu", "custom", "trajectory", {"adam": "mypkg:Adam"})
    assert "holds=" not in plain and "hyper_map=" not in plain



class _Config:
    def __init__(self, holds):
        self.holds = holds

    def getoption(self, name):
        assert name == "--hold"
        return self.holds


@pytest.mark.parametrize("item, message", [
    ("adam:beta1=2", "--hold 'adam:beta1=2': 2.0 is outside beta1's domain"),
    ("adam:beta1=x", "--hold 'adam:beta1=x': 'x' is not a number"),
    ("adam:beta1", "--hold 'adam:beta1': expected SPEC:name=value"),
    ("bogus:lr=1", "--hold 'bogus:lr=1': no optimizer spec named 'bogus'"),
])
def test_a_bad_hold_is_a_usage_error(item, message):
    with pytest.raises(pytest.UsageError, match=re.escape(message)):
        plugin._holds(_Config([item]))


def test_holds_parse_flags_and_numbers():
    assert plugin._holds(_Config(["adam:maximize=False", "adam:beta1=0.5", "sgd:nesterov=true"])) == {
        "adam": {"maximize": False, "beta1": 0.5}, "sgd": {"nesterov": True}}
