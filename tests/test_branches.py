"""conformance/branches.py: the boundaries it derives from each spec, and where its drawn inputs land.

The expected boundaries are read off the spec files by hand; the sides of the drawn inputs are computed
independently of branches.py: RAdam's ρ_6 in exact rational arithmetic from its formula, and the gradient
boundaries from the exact reference's state (``reference.step.trajectory``) with the formulas of Adamax's
and AMSGrad's max written out here.
"""
from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import spec as spec_pkg
from conformance.branches import G, OFFSETS, boundaries, boundary_cases, drawn, slots_per_step
from conformance.strategies import MAX_STEPS
from reference.step import trajectory
from spec.core import theta

LAMBDA = ("hyper", "Ne(lambda, 0)")
# sign(p) = 0 for p = ±0 and NaN (torch.sign): the zero piece is the "otherwise" one, reached at every first step
_RPROP_SCALED = "Piecewise((Delta*eta_+, p > 0), (Delta*eta_-, p < 0), (Delta, True))"
EXPECTED = {
    "sgd": {LAMBDA, ("step", "Eq(t, 1)"), ("hyper", "Ne(mu, 0)")},
    "adagrad": {LAMBDA},
    "rmsprop": {LAMBDA, ("hyper", "mu > 0")},
    "adadelta": {LAMBDA},
    "adam": {LAMBDA, ("grad", "Max(v, v_max)")},
    "adamw": {LAMBDA, ("grad", "Max(v, v_max)")},
    "adamax": {LAMBDA, ("grad", "Max(beta_2*u, epsilon + Abs(g))")},
    "nadam": {LAMBDA},
    "radam": {LAMBDA, ("hyper", "rho_t > 5")},
    "rprop": {("sign", "p > 0"), ("sign", "p < 0"),
              ("other", "Min(Delta_max, Max(Delta_min, " + _RPROP_SCALED + "))"),
              ("other", "Max(Delta_min, " + _RPROP_SCALED + ")"),
              ("other", "d > 0"), ("other", "d < 0")},
    "asgd": {("hyper", "Ne(w, 0)"), ("other", "Ne(mu, 1)"), ("hyper", "Max(1, t - t_0)")},
    # sign(c), c = β₁·m + (1 − β₁)·G: G placed around G* = β₁·m/(β₁ − 1) at every step (0 at the first)
    "lion": {LAMBDA, ("grad", "c > 0"), ("grad", "c < 0")},
    # the first step's g_prev = g (t = 1), and the decay's λ ≠ 0 guard (either form)
    "adan": {LAMBDA, ("step", "Eq(t, 1)")},
    # the warm-ups' t < T (a root T = t at every step) and the reference code's β₁ ≠ 0 test; λ is never skipped
    "ademamix": {("hyper", "T_alpha > t"), ("hyper", "T_beta3 > t"), ("hyper", "Ne(beta_1, 0)")},
    # warm-up k < W, written t ≤ W, solved for the whole number W = t at each step; the first step creates z and x;
    # the group scalars' comparisons (lr_max, the weight sum) mix state and hyperparameters: recorded, not placed
    "schedulefree_adamw": {LAMBDA, ("hyper", "W >= t"), ("step", "Eq(t, 1)"),
                           ("other", "Max(gamma_max, gamma_t)"), ("other", "Eq(W_sum, 0)")},
    "schedulefree_sgd": {LAMBDA, ("hyper", "W >= t"), ("step", "Eq(t, 1)"),
                         ("other", "Max(gamma_max, gamma_t)"), ("other", "Eq(W_sum, 0)")},
    # the trust ratio's ‖θ‖ > 0 and ‖u‖ > 0 compare reductions over the tensor: recorded, not placed
    # (tests/test_lamb.py steps zero tensors through the r = 1 side)
    "lamb": {LAMBDA, ("reduced", "q > 0"), ("other", "w > 0")},
    "sparse_adam": set(),
    # the sparse variants of SGD and Adagrad: no weight decay; SGD's momentum as the dense SGD's
    "sgd_sparse": {("step", "Eq(t, 1)"), ("hyper", "Ne(mu, 0)")},
    "adagrad_sparse": set(),
    # ρ_t = min(lr, 1/√t) (Python's min, a comparison): lr = 1/√t at each t (float roots at t = 1 and 4); α's floor compares ‖θ‖ (not placed);
    # the floors of V̂ and of the rows' mean and the clip involve G through reductions (recorded, not placed)
    "adafactor": {LAMBDA, ("hyper", "eta > 1/sqrt(t)"), ("other", "epsilon_2 < r"),
                  ("reduced", "Max(\\hat{V}, epsilon_1**2)"), ("reduced", "q > 1"),
                  ("reduced", "Max(epsilon_1, AxisMean(R, -2))")},
}
#: Specs whose comparisons need nothing placed: Rprop's are signs at G = 0, met by every drawn trajectory;
#: SparseAdam and sparse Adagrad have no comparison at all (no weight decay, no branch: the index set is an input,
#: drawn as such).
NOTHING_TO_PLACE = {"rprop", "sparse_adam", "adagrad_sparse"}

ONCE = settings(max_examples=2, derandomize=True, database=None, deadline=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def _by_text(name: str) -> dict:
    return {b.text: b for b in boundaries(name)}


@pytest.mark.parametrize("name", list(spec_pkg.OPTIMIZERS))
def test_derived_boundaries_are_the_specs_comparisons(name):
    assert {(b.kind, b.text) for b in boundaries(name)} == EXPECTED[name]
    assert bool(drawn(name)) == (name not in NOTHING_TO_PLACE), \
        f"{name}: every spec here but those of NOTHING_TO_PLACE has at least the λ ≠ 0 guard to draw at"


def test_boundary_functions_are_in_the_inputs():
    sym = {h.name: h.symbol for h in spec_pkg.get("adamax").numeric}
    u = next(s.symbol for s in spec_pkg.get("adamax").state if s.name == "exp_inf")
    f = _by_text("adamax")["Max(beta_2*u, epsilon + Abs(g))"].f
    assert sp.simplify(f - (sym["beta2"] * u - sym["eps"] - sp.Abs(G))) == 0
    state = {s.name: s.symbol for s in spec_pkg.get("adam").state}
    v, vmax = state["exp_avg_sq"], state["max_exp_avg_sq"]
    b2 = spec_pkg.get("adam").hyper("beta2").symbol
    f = _by_text("adam")["Max(v, v_max)"].f  # Max orders its arguments: f = v − v_max with v after the update
    assert sp.expand(f - (b2 * v + (1 - b2) * G ** 2 - vmax)) == 0


def test_gradient_is_recovered_through_maximize_and_coupled_decay():
    b = _by_text("adam")["Max(v, v_max)"]
    lam = spec_pkg.get("adam").hyper("weight_decay").symbol
    i = b.flags.index({"amsgrad": True, "maximize": True, "decoupled_weight_decay": False})
    assert sp.expand(b.inverses[i] - (lam * theta - G)) == 0
    i = b.flags.index({"amsgrad": True, "maximize": False, "decoupled_weight_decay": True})
    assert b.inverses[i] == G
    assert all(f["amsgrad"] for f in b.flags), "the max exists only with amsgrad"


def _rho(beta2: Fraction, t: int) -> Fraction:
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)


def test_radam_threshold_root_and_sides():
    (root,) = _by_text("radam")["rho_t > 5"].roots
    assert (root.hyper, root.t, root.representable) == ("beta2", 6, False)
    exact = mpmath.findroot(lambda b: 3 * b ** 5 + 2 * b ** 4 + b ** 3 - b - 2, 0.84)
    assert abs(float(root.root.evalf(30)) - float(exact)) < 1e-15
    sides = {}
    for x, side in root.values:
        rho = _rho(Fraction(x), 6)
        assert (rho > 5) - (rho < 5) == side, (x, float(rho))
        sides.setdefault(side, []).append(abs(float(rho) - 5))
    assert set(sides) == {-1, 1} and len(sides[-1]) == len(sides[1]) == len(OFFSETS)
    assert min(min(v) for v in sides.values()) < 1e-12, "the nearest values are within rounding of ρ_6 = 5"
    for t in range(1, 6):  # below t = 6 ρ_t < t ≤ 5 for every β₂: no boundary to draw
        assert all(_rho(Fraction(x), t) < 5 for x, _ in root.values)


def test_zero_guards_draw_the_root_and_a_positive_value():
    for name, text in (("sgd", "Ne(mu, 0)"), ("rmsprop", "mu > 0"), ("adam", "Ne(lambda, 0)")):
        (root,) = _by_text(name)[text].roots
        assert root.representable and root.root == 0 and root.values[0] == (0.0, 0)
        assert all(x > 0 and side == 1 for x, side in root.values[1:])


def test_asgd_averaging_threshold_has_a_root_at_every_step():
    """μ = 1/max(1, t − t₀): the tie t − t₀ = 1 at t₀ = t − 1, a float, for each t (the state test μ ≠ 1 reads the
    previous step's μ, so these roots are its boundary too)."""
    roots = _by_text("asgd")["Max(1, t - t_0)"].roots
    assert [(r.hyper, r.t, r.root, r.representable) for r in roots] == \
        [("t0", t, t - 1, True) for t in range(1, MAX_STEPS + 1)]


@given(data=st.data())
@ONCE
def test_asgd_case_has_t0_at_and_on_both_sides_of_each_root(data):
    case = data.draw(boundary_cases(spec_pkg.get("asgd"), "float32"))
    t0s = [h["t0"] for h, _ in case.groups]
    assert 0.0 in t0s and any(x != 0 and abs(x) <= 2 ** -4 for x in t0s)  # the root 0: itself and one δ
    for root in range(1, MAX_STEPS):
        assert root in t0s
        assert any(root * (1 - 2 ** -4) <= x < root for x in t0s) and any(root < x <= root * (1 + 2 ** -4) for x in t0s)
    assert len(case.groups) < 25, "one δ per side per root keeps the case small"


@given(data=st.data())
@ONCE
def test_radam_case_has_groups_on_both_sides_at_step_6(data):
    case = data.draw(boundary_cases(spec_pkg.get("radam"), "float64"))
    assert case.steps == MAX_STEPS
    rho = [_rho(Fraction(h["beta2"]), 6) for h, _ in case.groups]
    below, above = [5 - r for r in rho if 4 < r < 5], [r - 5 for r in rho if 5 < r < 6]
    assert len(below) >= len(OFFSETS) and len(above) >= len(OFFSETS), [float(r) for r in rho]
    assert min(below) < 1e-12 and min(above) < 1e-12
    lam = [h["weight_decay"] for h, _ in case.groups]
    assert 0.0 in lam and any(x > 0 for x in lam)


def _mp(x):
    return mpmath.mpf(x) if not isinstance(x, mpmath.mpf) else x


def _exact_f(name, hyper, before, k, gk):
    """The boundary function at step k from the exact state before it, written out from the spec's formulas."""
    theta_k = _mp(before["theta"])
    geff = (-1 if hyper["maximize"] else 1) * _mp(gk)
    if hyper["weight_decay"] != 0 and not hyper.get("decoupled_weight_decay", False) and name != "adamw":
        geff += _mp(hyper["weight_decay"]) * theta_k
    b2 = _mp(hyper["beta2"])
    if name == "adamax":
        return b2 * _mp(before["exp_inf"]) - (abs(geff) + _mp(hyper["eps"]))
    v = b2 * _mp(before["exp_avg_sq"]) + (1 - b2) * geff ** 2
    return _mp(before["max_exp_avg_sq"]) - v


@pytest.mark.parametrize("name,text", [("adamax", "Max(beta_2*u, epsilon + Abs(g))"), ("adam", "Max(v, v_max)")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_placed_gradients_land_on_both_sides(name, text, dtype):
    spec = spec_pkg.get(name)
    b = _by_text(name)[text]
    per_step = slots_per_step(b, dtype)
    seen = []

    @given(data=st.data())
    @ONCE
    def draw(data):
        seen.append(data.draw(boundary_cases(spec, dtype)))

    draw()
    for case in seen:
        i = [ps[0].size for _, ps in case.groups].index(MAX_STEPS * per_step)
        hyper, (param,) = case.groups[i]
        grads = [case.grads[s][i][0] for s in range(case.steps)]
        snaps = trajectory(spec, hyper, param, grads, formats=(dtype,))
        near = {-1: 0, 1: 0}
        for e in range(param.size):
            k = 1 + e // per_step
            if k == 1:
                names = [s.name for s in spec.state if s.name != "step"]
                before = {"theta": float(param.reshape(-1)[e]), **{n: 0.0 for n in names}}
            else:
                snap = snaps[k - 2]
                before = {"theta": snap.theta.reshape(-1)[e].value,
                          **{n: a.reshape(-1)[e].value for n, a in snap.state.items()}}
            f = _exact_f(name, hyper, before, k, float(grads[k - 1].reshape(-1)[e]))
            scale = abs(_mp(before.get("exp_inf", before.get("max_exp_avg_sq", 0)))) or 1
            if f != 0 and abs(f) <= scale * 2 ** -3:
                near[1 if f > 0 else -1] += 1
        assert near[-1] >= 2 and near[1] >= 2, f"{name} {dtype}: elements near the boundary by side {near}"
