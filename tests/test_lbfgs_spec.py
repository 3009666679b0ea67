"""spec/lbfgs.py in exact arithmetic, and what torch's code does that its docstring does not say.

* With an exact line search, L-BFGS on a strongly convex quadratic takes the conjugate-gradient steps whatever
  the memory m ≥ 1 and the scale γ of H₀ = γI (with gᵀs_prev = 0 the two-loop direction is a multiple of CG's),
  so it reaches the minimum in at most n iterations: checked exactly, in rationals, on the spec's statements.
  torch's own steps are not exact line searches (a fixed t, or the first strong-Wolfe point), so this is a
  property of the algorithm, not of an implementation (docs/optimizers/lbfgs.md).
* H·y = s for the newest pair (the secant equation), exactly, with any H₀.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from conformance import lbfgs as lb
from spec import lbfgs as spec


def _spd(seed: int, n: int) -> list:
    """A = I + MᵀM with small integer M: symmetric positive definite, exact."""
    m = np.random.default_rng(seed).integers(-3, 4, (n, n))
    a = np.eye(n, dtype=np.int64) + m.T @ m
    return [[Fraction(int(v)) for v in row] for row in a]


def _matvec(a, x):
    return [spec.dot(row, x) for row in a]


@settings(max_examples=15, derandomize=True, database=None, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 4), m=st.integers(1, 4))
def test_exact_line_search_reaches_the_minimum_in_n_iterations(seed, n, m):
    a = _spd(seed, n)
    rng = np.random.default_rng(seed + 1)
    b = [Fraction(int(v)) for v in rng.integers(-5, 6, n)]
    x = [Fraction(int(v)) for v in rng.integers(-5, 6, n)]
    history, gam = [], Fraction(1)
    g = [gi - bi for gi, bi in zip(_matvec(a, x), b)]
    for k in range(n):
        if not any(g):
            return
        d = spec.two_loop(g, history, gam)  # −g at k = 0: no pairs, γ = 1
        alpha = -spec.dot(g, d) / spec.dot(d, _matvec(a, d))  # the exact line search
        s = [alpha * di for di in d]
        x = [xi + si for xi, si in zip(x, s)]
        g_new = [gi - bi for gi, bi in zip(_matvec(a, x), b)]
        y = [p - q for p, q in zip(g_new, g)]
        if spec.curvature_ok(y, s):
            history = spec.store(history, y, s, m)
            gam = spec.h_diag(y, s)
            assert spec.two_loop(y, history, gam) == [-si for si in s]  # H·y = s, exactly
        g = g_new
    assert not any(g), f"gradient after {n} exact iterations: {g}"


def test_first_step_size_is_the_l1_norm():
    assert spec.first_step_size([Fraction(3), Fraction(-4)], Fraction(1)) == Fraction(1, 7)  # not 1/5 (L2)
    assert spec.first_step_size([Fraction(1, 4)], Fraction(1, 2)) == Fraction(1, 2)  # min(1, 4)·lr


def _torch_calls(max_iter, max_eval, line_search, x0=(3.0, -2.0)):
    p = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=max_iter, max_eval=max_eval, line_search_fn=line_search,
                            tolerance_grad=0.0, tolerance_change=0.0)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (p ** 4).sum() + (p ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return len(calls)


@pytest.mark.parametrize("max_eval, line_search, calls", [(1, None, 2), (3, None, 3), (1, "strong_wolfe", 2)])
def test_torch_can_exceed_max_eval_by_one(max_eval, line_search, calls):
    """The docstring says max_eval is the "maximal number of function evaluations per optimization step"; torch
    calls the closure once more where max_eval = 1 (no line search: the first iteration's evaluation), and with
    strong Wolfe where the line search's first trial comes on top of its max_ls = max_eval − calls; the spec's
    bound (``max_closure_calls``) is what the code guarantees, and these reach it."""
    assert _torch_calls(20, max_eval, line_search) == calls
    assert calls == spec.max_closure_calls(20, max_eval, line_search is not None)


def test_max_eval_defaults_to_the_floor_of_five_quarters_of_max_iter():
    """Docstring: "default: max_iter * 1.25"; code: ``max_iter * 5 // 4`` (3 for max_iter = 3, not 3.75)."""
    p = torch.zeros(1, requires_grad=True)
    assert torch.optim.LBFGS([p], max_iter=3).param_groups[0]["max_eval"] == 3


def test_a_bound_is_zero_for_exact_operations_and_positive_otherwise():
    """The Bounded arithmetic charges nothing where no rounding can happen (exact inputs negated) and a
    rounding where it can (the sum of two exact values)."""
    x = lb.exact(np.array([1.0, 2.0]))
    assert np.all(lb.neg(x).e == 0)
    assert np.all(lb.add(x, x).e > 0)
