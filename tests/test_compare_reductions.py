"""reference.compare on specs that reduce over the tensor (LAMB): the norms are non-negative unknowns, one per
equal argument, split into = 0 and > 0; the numeric screen runs on one-element tensors."""
from __future__ import annotations

import sympy as sp

from reference import compare
from spec.reductions import MaxAbs, Norm

m, g, b = sp.symbols("m g beta", real=True)


def test_norms_of_arguments_equal_element_by_element_are_one_unknown():
    weighted = Norm(b * m + (1 - b) * g)
    lerp = Norm(m + (1 - b) * (g - m))
    assert compare._equal(weighted, lerp, set())
    assert not compare._equal(Norm(m), MaxAbs(m), set())  # ‖m‖₂ and max|m| differ on tensors of two elements
    assert not compare._equal(Norm(m), Norm(g), set())


def test_zero_norm_branches_are_decided_by_the_split():
    w, q = Norm(m), Norm(g)
    tf_addons = sp.Piecewise((w / q, sp.And(w > 0, q > 0)), (1, True))
    optax = sp.Piecewise((1, sp.Or(sp.Eq(w, 0), sp.Eq(q, 0))), (w / q, True))
    assert compare._equal(tf_addons, optax, set())
    clamped = sp.Piecewise((1, sp.Or(sp.Eq(w, 0), sp.Eq(q, 0))), (w / (q + 1), True))
    assert not compare._equal(tf_addons, clamped, set())


def test_one_element_screen_values():
    assert compare._one_element(Norm(m) + MaxAbs(g)) == sp.Abs(m) + sp.Abs(g)


def test_lamb_pairs():
    verdicts = {(p.dialect, c.label): compare.decide(p, c) for p in compare.PAIRS if p.torch == "lamb"
                for c in p.cases}
    by_dialect = {}
    for (dialect, _), r in verdicts.items():
        by_dialect.setdefault(dialect, []).append(r.verdict)
    assert by_dialect["lamb@optax"] == [compare.EQUAL, compare.EQUAL]
    assert by_dialect["lamb@keras"] == [compare.EQUAL, compare.DIFFERENT]
    assert by_dialect["lamb@pytorch-optimizer"] == [compare.DIFFERENT, compare.DIFFERENT]
    core = next(r for (d, _), r in verdicts.items() if d == "lamb@pytorch-optimizer")
    # θ₀ = 0.5, g = 1, lr = 0.1: the paper moves θ by lr·‖θ‖ = 0.05; pytorch-optimizer by lr/(1 − β₁)·r·u ≈ 0.498
    assert core.witness.torch_theta[0][1] == 0.45 and core.witness.dialect_theta[0][1] < 0.01
