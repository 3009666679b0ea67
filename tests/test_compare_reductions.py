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


def test_adafactor_transformers_pairs():
    """transformers' Adafactor against torch's: ε₁ added to g² (not a floor) on a vector's and a matrix's program,
    and the decay by the scaled step α after the update; each witness (the matrix's on a 1×1 tensor) moves θ
    differently from the first step."""
    rs = [compare.decide(p, c) for p in compare.PAIRS if p.dialect == "adafactor@transformers" for c in p.cases]
    assert [r.verdict for r in rs] == [compare.DIFFERENT] * 3
    vector, matrix, decay = (r.witness for r in rs)
    # θ₀ = 0.5, g = 1, ε₁ = 0.1, α = 0.5·0.01: torch's U = 1/√max(1, ε₁²) = 1, transformers' 1/√(1 + ε₁)
    assert vector.torch_theta[0][1] == 0.495 and abs(vector.dialect_theta[0][1] - (0.5 - 0.005 / 1.1 ** 0.5)) < 1e-15
    assert matrix.dialect_theta == vector.dialect_theta  # a 1×1 matrix: R·C/mean R = V
    # torch: θ·(1 − lr·λ) − α = 0.4995 − 0.005; transformers: θ − λ·α·θ − α = 0.5 − 0.00025 − 0.005
    assert decay.torch_theta[0][1] == 0.4945 and decay.dialect_theta[0][1] == 0.49475


def test_adafactor_optax_pair_moves_as_transformers_does():
    """Optax's Adafactor against torch's: different, and on the witness (t ≤ 3, where 1/√t > 10⁻², so
    transformers' relative step is lr = 10⁻²) its exact θ is transformers' exactly: the two share ε added to g²,
    the clip and the parameter scale."""
    (pair_o,) = [p for p in compare.PAIRS if p.dialect == "adafactor@optax"]
    (pair_t,) = [p for p in compare.PAIRS if p.dialect == "adafactor@transformers"]
    optax_r = compare.decide(pair_o, pair_o.cases[0])
    assert optax_r.verdict == compare.DIFFERENT
    assert optax_r.witness.dialect_theta == compare.decide(pair_t, pair_t.cases[0]).witness.dialect_theta
