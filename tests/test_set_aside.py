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
    elements = None  # covers whole tensors


@pytest.fixture
def covered_when_inf(monkeypatch):
    """A known deviation that covers every case with an infinite parameter value anywhere."""
    seen = []

    def known(config, test, spec, path, dtype, case):
        seen.append(case)
        return [_Entry()] if any(np.isinf(p).any() for _, params in case.groups for p in params) else []

    monkeypatch.setattr(harness, "known_deviations_for", known)
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
    out, aside = _without_known(case)
    assert out is case and aside == {}


def test_the_covered_tensors_are_left_out_with_their_gradients_and_the_rest_kept(covered_when_inf):
    case = _case([[[1.0, np.inf], [2.0]], [[np.inf]], [[3.0], [4.0, 5.0]]])
    out, aside = _without_known(case)
    assert aside == {}
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
    def known(config, test, spec, path, dtype, case):
        return [_Entry()] if sum(len(params) for _, params in case.groups) >= 2 else []

    monkeypatch.setattr(harness, "known_deviations_for", known)
    with pytest.raises(Unsatisfiable):
        _without_known(_case([[[1.0], [2.0]]]))


class _ElementEntry:
    id = "stand-in-elements"

    @staticmethod
    def elements(one):
        return np.isinf(one.groups[0].params[0])


def test_an_entry_that_names_its_elements_keeps_the_tensor_and_sets_those_elements_aside(monkeypatch):
    def known(config, test, spec, path, dtype, case):
        return [_ElementEntry()] if any(np.isinf(p).any() for _, params in case.groups for p in params) else []

    monkeypatch.setattr(harness, "known_deviations_for", known)
    case = _case([[[1.0]], [[2.0, np.inf, 3.0], [np.inf]], [[4.0]]])
    out, aside = _without_known(case)
    # the all-covered tensor (group 1, param 1) is left out; (1, 0) stays with its element 1 aside
    assert [[p.tolist() for p in params] for _, params in out.groups] == [[[1.0]], [[2.0, np.inf, 3.0]], [[4.0]]]
    assert list(aside) == [(1, 0)]
    mask, why = aside[(1, 0)]
    assert mask.tolist() == [False, True, False] and "stand-in-elements" in why


def test_elements_set_aside_are_not_compared_and_are_counted_apart():
    """A value set aside is neither ok nor failing, whatever it is; the rest is still compared."""
    from conformance.backends import load
    from conformance.backend import for_backend
    from conformance.check import check

    data = Case("adam", "float32", [Group({"lr": 1e-3}, [np.ones(3, dtype=np.float32)])],
                [[[np.ones(3, dtype=np.float32)]] for _ in range(2)])
    outputs = load("numpy").run(for_backend(data, "for-loop"))
    for out in outputs:
        out.params[0][0][1] = np.nan  # wrong at element 1 only
    mask = np.array([False, True, False])
    for mode in ("trajectory", "step"):
        for engine in ("fast", "interval"):
            assert not check(data, outputs, mode, engine, scalars="float64").ok
            report = check(data, outputs, mode, engine, scalars="float64", aside={(0, 0): (mask, "why")})
            assert report.ok, (mode, engine, report.summary())
            assert report.counts()["aside"] > 0 and report.values() > 0, (mode, engine)
    outputs[-1].params[0][0][0] = 7.0  # and wrong where not aside: caught
    assert not check(data, outputs, "trajectory", scalars="float64", aside={(0, 0): (mask, "why")}).ok
