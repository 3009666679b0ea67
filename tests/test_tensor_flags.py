"""Tensor flags (spec.core.TensorFlag): a rule that the parameter's shape selects, as Adafactor's factored and
unfactored second moments are, compiled for both and chosen per tensor by the reference."""
import numpy as np
import pytest
import sympy as sp

from reference.program import compile_rule, state_read
from reference.step import trajectory
from spec import common
from spec.core import STEP, Assign, OptimizerSpec, State, TensorFlag, g, theta

LR = common.lr(0.5)
v = sp.Symbol("v", real=True)
w = sp.Symbol("w", real=True)


def _rule(f):
    if f["matrix"]:
        return [Assign(w, g, "matrices keep w"), Assign(theta, theta - LR.symbol * w, "step")]
    return [Assign(v, 2 * g, "vectors keep v"), Assign(theta, theta - LR.symbol * v, "step")]


TOY = OptimizerSpec(name="toy-tensor-flag", title="toy", hyperparameters=(LR,),
                    state=(STEP, State("v", doc="vectors"), State("w", doc="matrices")), rule=_rule,
                    tensor_flags=(TensorFlag("matrix", "the tensor has two or more dimensions",
                                             lambda shape: len(shape) >= 2),))


def test_the_shape_selects_the_program():
    assert dict(compile_rule(TOY, {}, (3,)).flags)["matrix"] is False
    assert dict(compile_rule(TOY, {}, (2, 3)).flags)["matrix"] is True
    vec = trajectory(TOY, {}, np.ones(3), [np.ones(3)])[0]
    mat = trajectory(TOY, {}, np.ones((1, 3)), [np.ones((1, 3))])[0]
    assert [e.rounded["float64"] for e in vec.theta] == [0.0] * 3  # 1 − 0.5·2g
    assert [e.rounded["float64"] for e in mat.theta.flat] == [0.5] * 3  # 1 − 0.5·g


def test_state_read_follows_the_tensor_flag():
    assert state_read(TOY, {"lr": 0.5}, ["theta"], 2, (3,)) == frozenset()
    assert state_read(TOY, {"lr": 0.5}, ["theta", "v", "w"], 2, (2, 2)) == frozenset({"v"})  # v: left alone


def test_without_a_shape_the_rule_cannot_be_chosen():
    with pytest.raises(ValueError, match="depends on the tensor's shape"):
        compile_rule(TOY, {})
    with pytest.raises(ValueError, match="give the parameter's shape"):
        TOY.statements({})
    assert [s.doc for s in TOY.statements({}, (4,))][0] == "vectors keep v"
    assert len(TOY.flag_combinations()) == 1 and len(TOY.flag_combinations(tensor=True)) == 2
