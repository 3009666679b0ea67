"""``conformance.harness.without_known``: a known, input-specific deviation leaves out the tensors it covers.

The deviation predicate here is a stand-in (a tensor holding an infinity is "covered"), so that what is
tested is the narrowing itself: which tensors stay, with their gradients and learning rates, and when the
whole case is set aside instead."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.errors import Unsatisfiable

from conformance import harness
from conformance.backend import Case, Group


class _Entry:
    id = "stand-in"


@pytest.fixture
def covered_when_inf(monkeypatch):
    """A known deviation that covers every case with an infinite parameter value anywhere."""
    seen = []

    def known(config, test, spec, path, dtype, case, whole=False):
        seen.append(case)
        return _Entry() if any(np.isinf(p).any() for _, params in case.groups for p in params) else None

    monkeypatch.setattr(harness, "known_deviation_for", known)
    return seen


def _without_known(case):
    """``without_known`` inside a one-example Hypothesis test, where it may record events and reject."""
    out = []

    @settings(max_examples=1, database=None)
    @given(st.just(None))
    def run(_):
        out.append(harness.without_known(SimpleNamespace(config=None, node=SimpleNamespace(
            originalname="test_trajectory")), case, "for-loop"))

    run()
    return out[0]


def _case(params_by_group, steps=2, lrs=True):
    groups = [Group({"lr": 0.1 * (i + 1)}, [np.array(p, dtype=np.float32) for p in params])
              for i, params in enumerate(params_by_group)]
    grads = [[[np.full(len(p), 10 * s + i + j, dtype=np.float32) for j, p in enumerate(params)]
              for i, params in enumerate(params_by_group)] for s in range(steps)]
    rates = [[0.5 * s + i for i in range(len(groups))] for s in range(steps)] if lrs else None
    return Case("sgd", "float32", groups, grads, rates)


def test_an_uncovered_case_is_returned_as_it_is(covered_when_inf):
    case = _case([[[1.0, 2.0]], [[3.0]]])
    assert _without_known(case) is case


def test_the_covered_tensors_are_left_out_with_their_gradients_and_the_rest_kept(covered_when_inf):
    case = _case([[[1.0, np.inf], [2.0]], [[np.inf]], [[3.0], [4.0, 5.0]]])
    out = _without_known(case)
    assert [[p.tolist() for p in params] for _, params in out.groups] == [[[2.0]], [[3.0], [4.0, 5.0]]]
    assert [g.hyper["lr"] for g in out.groups] == [0.1, 0.30000000000000004]
    # group 0 keeps its param 1, group 2 both: gradients follow their (group, param), lrs their group
    for s in range(2):
        assert [[g.tolist() for g in row] for row in out.grads[s]] == \
            [[[10 * s + 0 + 1]], [[10 * s + 2 + 0], [10 * s + 2 + 1] * 2]]
        assert out.lrs[s] == [0.5 * s + 0, 0.5 * s + 2]
    assert (out.optimizer, out.dtype, out.layout) == (case.optimizer, case.dtype, case.layout)


def test_a_case_whose_every_tensor_is_covered_is_set_aside(covered_when_inf):
    case = _case([[[np.inf]], [[1.0, -np.inf]]], lrs=False)
    with pytest.raises(Unsatisfiable):
        _without_known(case)


def test_what_is_left_is_judged_again_as_a_whole(monkeypatch):
    """A deviation that needs two tensors together covers neither alone: the case is set aside, not run."""
    def known(config, test, spec, path, dtype, case, whole=False):
        return _Entry() if sum(len(params) for _, params in case.groups) >= 2 else None

    monkeypatch.setattr(harness, "known_deviation_for", known)
    with pytest.raises(Unsatisfiable):
        _without_known(_case([[[1.0], [2.0]]]))
