"""State that the dialect keeps per row or per column (spec.core.State.reduced_axis): its shapes, the reference
taking it as given state, and a clear error for any other shape instead of a failure deep inside."""
import numpy as np
import pytest

import spec as spec_pkg
from conformance.backend import Case, Group, StepOutput
from conformance.check import check
from reference.step import trajectory
from spec.core import State


def test_dialect_shapes():
    row, col, whole = State("r", reduced_axis=-1), State("c", reduced_axis=-2), State("v")
    assert row.dialect_shape((2, 3, 4)) == (2, 3, 1) and col.dialect_shape((2, 3, 4)) == (2, 1, 4)
    assert whole.dialect_shape((5,)) == (5,)
    with pytest.raises(ValueError, match="lacks"):
        col.dialect_shape((5,))
    row.check_shape((2, 3, 1), (2, 3, 4))
    row.check_shape((), (2, 3, 4))
    row.check_shape((2, 3, 4), (2, 3, 4))
    with pytest.raises(ValueError, match=r"must be \(\) or \(2, 3, 4\) or \(2, 3, 1\)"):
        row.check_shape((2, 1, 4), (2, 3, 4))
    with pytest.raises(ValueError, match=r"must be \(\) or \(5,\)$"):
        whole.check_shape((4,), (5,))


def test_a_state_of_another_shape_is_a_clear_error():
    """A backend reporting Adam's exp_avg in a shape that is neither 0-d nor the parameter's: a ValueError that
    names the optimizer, the step, the variable and the shapes, in single-step and trajectory mode alike; and the
    reference refuses such a given state the same way."""
    adam = spec_pkg.get("adam")
    p = np.ones((2, 3), np.float32)
    g = np.full((2, 3), 0.5, np.float32)
    case = Case("adam", "float32", [Group(adam.complete({}), [p])], [[[g]]])
    bad = [StepOutput(params=[[p - np.float32(1e-3)]], state=[[{"step": 1.0, "exp_avg": np.zeros((2, 1), np.float32)}]])]
    for mode in ("trajectory", "step"):
        with pytest.raises(ValueError, match=r"adam: step 1, group 0, param 0: the backend's state 'exp_avg' has "
                                             r"shape \(2, 1\); for a parameter of shape \(2, 3\) it must be"):
            check(case, bad, mode=mode)
    with pytest.raises(ValueError, match="state 'exp_avg' has shape"):
        trajectory(adam, {}, p, [g], state={"exp_avg": np.zeros((2, 1))}, step=1)
