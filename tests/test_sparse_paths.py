"""Sparse gradients beyond SparseAdam: torch's SGD and Adagrad given sparse gradients (``sgd_sparse``,
``adagrad_sparse``: spec/sgd.py, spec/adagrad.py), and duplicate indices (``reference.sparse.Uncoalesced``).

What the specs say, held against values worked out by hand and against torch 2.13's classes; the refusals the
specs list, with torch's messages; and deliberately broken NumPy ports that the check must catch."""
from __future__ import annotations

import math
import warnings
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

import spec as spec_pkg
from conformance.backend import Case, Group, for_backend, lay_out
from conformance.backends import load
from conformance.check import check
from conformance.replay import decode_array, encode_array
from reference.sparse import Uncoalesced, coalesce, uncoalesced
from reference.formats import exact, round_to_format
from reference.step import trajectory

torch = pytest.importorskip("torch")

ADAGRAD = spec_pkg.get("adagrad_sparse")
SGD = spec_pkg.get("sgd_sparse")


def _sparse(values, held, dtype="float64"):
    return np.ma.MaskedArray(np.array(values, dtype=dtype), mask=~np.array(held, dtype=bool))


def _coo(idx, vals, n, dtype=torch.float64):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_coo_tensor(torch.tensor([idx], dtype=torch.long).reshape(1, -1),
                                       torch.tensor(vals, dtype=dtype), (n,))


# ---- what the specs say ------------------------------------------------------------------------------------

def test_adagrad_outside_the_index_set_keeps_theta_and_sum_and_clr_uses_the_tensors_step():
    # θ = (1, 2), s₀ = 0.5, lr_decay 1: element 1 is first held at the tensor's step 3, so clr = lr/(1 + 2·1)
    hyper = ADAGRAD.complete({"lr": 0.3, "lr_decay": 1.0, "initial_accumulator_value": 0.5})
    grads = [_sparse([1.0, 9.0], [True, False]), _sparse([0.0, 0.0], [False, False]), _sparse([2.0, 0.5], [True, True])]
    rows = trajectory(ADAGRAD, hyper, np.array([1.0, 2.0]), grads, formats=("float64",))
    assert [r.t for r in rows] == [1, 2, 3]  # the empty step 2 counts
    assert rows[1].values("theta")[1] == 2 and rows[1].values("sum")[1] == Fraction(1, 2)  # untouched
    s = 0.5 + 0.25
    want = 2 - 0.3 / 3 * 0.5 / (math.sqrt(s) + 1e-10)
    assert float(rows[2].values("theta")[1]) == pytest.approx(want, rel=1e-12)


def test_a_held_zero_with_an_empty_sum_and_eps_0_is_nan_an_untouched_element_is_not():
    # the dense step on the densified gradient would make both NaN (0/(√0 + 0)); the sparse branch computes only
    # where the gradient holds a value
    hyper = ADAGRAD.complete({"lr": 0.1, "eps": 0.0})
    rows = trajectory(ADAGRAD, hyper, np.array([1.0, 1.0]), [_sparse([0.0, 0.0], [True, False])], formats=("float64",))
    theta = rows[0].values("theta")
    assert theta[1] == 1 and math.isnan(float(theta[0]))
    p = torch.tensor([1.0, 1.0], dtype=torch.float64)
    opt = torch.optim.Adagrad([p], lr=0.1, eps=0.0)
    p.grad = _coo([0], [0.0], 2)
    opt.step()
    assert math.isnan(p[0].item()) and p[1].item() == 1.0


@pytest.mark.parametrize("fmt", ["float16", "bfloat16", "float32", "float64"])
def test_coalesce_is_the_correctly_rounded_sum(fmt):
    import ml_dtypes
    dtype = {"bfloat16": ml_dtypes.bfloat16}.get(fmt, fmt)
    rng = np.random.default_rng(3)
    a = (rng.standard_normal(400) * 2.0 ** rng.integers(-30, 30, 400)).astype(dtype)
    b = (rng.standard_normal(400) * 2.0 ** rng.integers(-30, 30, 400)).astype(dtype)
    a[:4], b[:4] = np.array([0.0, -0.0, np.inf, 1.0]).astype(dtype), np.array([-0.0, -0.0, -np.inf, 0.0]).astype(dtype)
    g = uncoalesced(a, np.ones(400, bool), np.ones(400, bool), b)
    got = np.ma.getdata(coalesce(g))
    for x, y, z in zip(a[4:], b[4:], got[4:]):
        assert exact(z) == exact(round_to_format(exact(x) + exact(y), fmt)) or not np.isfinite(z)
    signs = np.signbit(got[:2].astype(np.float64))
    assert got[0] == 0 and not signs[0] and signs[1] and np.isnan(got[2].astype(np.float64)) and got[3] == 1
    t = torch.sparse_coo_tensor(torch.tensor([list(range(400)) * 2]), torch.cat([torch.from_numpy(a.astype(np.float64)),
                                torch.from_numpy(b.astype(np.float64))]).to(getattr(torch, fmt)), (400,)).coalesce()
    torch_sum = t._values().to(torch.float64).numpy()
    assert np.array_equal(torch_sum, got.astype(np.float64), equal_nan=True)  # torch's coalesce() agrees


def test_duplicates_are_refused_where_the_spec_neither_coalesces_nor_adds_them_in_turn():
    g = uncoalesced(np.array([1.0]), [True], [True], np.array([2.0]))
    unspecified = SGD.variant("sgd_sparse_unspecified", dialect="test", adds_duplicates_in_turn=False)
    with pytest.raises(ValueError, match="neither coalesces nor adds in turn"):
        trajectory(unspecified, unspecified.complete({}), np.array([1.0]), [g])


def test_sgd_adds_duplicates_in_turn_and_the_check_tells_that_from_coalescing_them():
    """sgd_sparse (``adds_duplicates_in_turn``): θ = 1, lr = 1, an index held twice with 1 and 2⁻¹¹ in float16.  The
    exact step is 1 − 1 − 2⁻¹¹ = −2⁻¹¹, what torch's contiguous path gives (θ + (−1)·1 = 0, then 0 + (−1)·2⁻¹¹); a
    coalescing SGD gives 1 − fl(1 + 2⁻¹¹) = 0, which the check fails (the bound of the two exact additions is 0)."""
    g = uncoalesced(np.array([1.0], np.float16), [True], [True], np.array([2.0 ** -11], np.float16))
    (snap,) = trajectory(SGD, SGD.complete({"lr": 1.0}), np.array([1.0], np.float16), [g], formats=("float16",))
    assert snap.rounded("theta", "float16")[0] == -2.0 ** -11
    data = Case("sgd_sparse", "float16", [Group(SGD.complete({"lr": 1.0}), [np.array([1.0], np.float16)])],
                [[[g]]])
    outputs = load("torch-cpu").run(for_backend(data, "for-loop"))
    assert outputs[0].params[0][0][0] == -2.0 ** -11
    assert check(data, outputs, scalars="float64").ok
    coalescing = [replace(outputs[0], params=[[np.array([0.0], np.float16)]])]
    assert not check(data, coalescing, scalars="float64").ok
    numpy_outputs = load("numpy").run(for_backend(data, "for-loop"))
    assert numpy_outputs[0].params[0][0][0] == -2.0 ** -11


def test_sgd_coalesces_duplicates_on_a_non_contiguous_parameter_and_the_check_follows():
    """The same step on a strided (non-contiguous) θ: torch's slow path coalesces first, 1 − fl(1 + 2⁻¹¹) = 0 (tie to
    even), so the check coalesces such a gradient before the reference reads it and fails the in-turn −2⁻¹¹."""
    g = uncoalesced(np.array([1.0, 0.0], np.float16), [True, False], [True, False],
                    np.array([2.0 ** -11, 0.0], np.float16))
    data = Case("sgd_sparse", "float16", [Group(SGD.complete({"lr": 1.0}), [np.array([1.0, 1.0], np.float16)])],
                [[[g]]], layout="strided")
    for backend in ("torch-cpu", "numpy"):
        outputs = load(backend).run(for_backend(data, "for-loop"))
        assert outputs[0].params[0][0].tolist() == [0.0, 1.0], backend
        assert check(data, outputs, scalars="float64").ok, backend
    in_turn = [replace(outputs[0], params=[[np.array([-2.0 ** -11, 1.0], np.float16)]])]
    assert not check(data, in_turn, scalars="float64").ok


def test_an_uncoalesced_gradient_travels_through_layouts_and_replays():
    g = uncoalesced(np.array([[1.0, 2.0], [3.0, 4.0]]), [[True, False], [True, True]], [[True, False], [False, True]],
                    np.array([[5.0, 6.0], [7.0, 8.0]]))
    for layout in ("contiguous", "strided", "transposed"):
        laid = lay_out(g, layout)
        assert isinstance(laid, Uncoalesced)
        assert np.array_equal(np.ma.getdata(coalesce(laid)), np.ma.getdata(coalesce(g)))
    back = decode_array(encode_array(g), "float64")
    assert isinstance(back, Uncoalesced) and np.array_equal(back.twice, g.twice)
    assert np.array_equal(np.ma.getdata(coalesce(back)), [[6.0, 2.0], [3.0, 12.0]])


# ---- torch 2.13, read in torch/optim/sgd.py and adagrad.py and measured --------------------------------------

def test_torch_refusals_with_sparse_gradients():
    cases = [
        (torch.optim.Adagrad, dict(weight_decay=0.1), "weight_decay option is not compatible with sparse gradients"),
        (torch.optim.Adagrad, dict(fused=True), "`fused` does not support sparse grad or complex param"),
        (torch.optim.SGD, dict(weight_decay=0.1), r"add\(sparse, dense\) is not supported"),
        (torch.optim.SGD, dict(fused=True), "`_fused_sgd` does not support sparse gradients"),
    ]
    for cls, kw, message in cases:
        p = torch.tensor([1.0, 2.0])
        opt = cls([p], lr=0.1, **kw)
        p.grad = _coo([1], [1.0], 2, torch.float32)
        with pytest.raises(RuntimeError, match=message):
            opt.step()


def test_torch_sgd_with_momentum_keeps_a_sparse_buffer_and_moves_every_element_it_holds():
    # an element held once keeps moving with the decaying buffer: 1 − 0.5·1 − 0.5·(0.5·1); one never held keeps θ
    p = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    opt = torch.optim.SGD([p], lr=0.5, momentum=0.5)
    for idx, vals in (([0], [1.0]), ([1], [1.0])):
        p.grad = _coo(idx, vals, 3)
        opt.step()
    assert opt.state[p]["momentum_buffer"].is_sparse
    assert p.tolist() == [1.0 - 0.5 - 0.25, 2.0 - 0.5, 3.0]


def test_sgd_sparse_momentum_steps_an_element_the_buffer_holds_as_the_rule_at_g_0():
    # the spec, worked by hand: element 0 held at step 1 only, element 1 at step 2 only, element 2 never
    hyper = SGD.complete({"lr": 0.5, "momentum": 0.5, "dampening": 0.25})
    grads = [_sparse([1.0, 7.0, 7.0], [True, False, False]), _sparse([7.0, 1.0, 7.0], [False, True, False])]
    rows = trajectory(SGD, hyper, np.array([1.0, 2.0, 3.0]), grads, formats=("float64",))
    # step 1: b = g (no dampening); step 2: b = 0.5·1 + 0 at element 0, 0.5·0 + 0.75·1 at element 1
    assert [float(x) for x in rows[0].values("theta")] == [0.5, 2.0, 3.0]
    assert [float(x) for x in rows[1].values("theta")] == [0.25, 2.0 - 0.375, 3.0]
    assert [float(x) for x in rows[1].values("momentum_buffer")] == [0.5, 0.75, 0.0]
    # Nesterov: θ moves by −lr·(g + μ·b), with g = 0 where the step's gradient holds no entry
    hyper = SGD.complete({"lr": 0.5, "momentum": 0.5, "nesterov": True})
    rows = trajectory(SGD, hyper, np.array([1.0, 2.0, 3.0]), grads, formats=("float64",))
    assert [float(x) for x in rows[1].values("theta")] == [1.0 - 0.75 - 0.125, 2.0 - 0.75, 3.0]


def test_sgd_sparse_momentum_refuses_duplicate_indices():
    # torch's merge keeps two entries of an index held twice, scaled and added on their own: not specified
    hyper = SGD.complete({"lr": 0.5, "momentum": 0.5})
    g = uncoalesced(np.array([1.0, 2.0]), [True, True], [True, False], np.array([3.0, 0.0]))
    with pytest.raises(ValueError, match="adds in turn only where it keeps no state"):
        trajectory(SGD, hyper, np.array([1.0, 2.0]), [g], formats=("float64",))
    assert trajectory(SGD, SGD.complete({"lr": 0.5}), np.array([1.0, 2.0]), [g], formats=("float64",))


def test_adagrad_and_sparse_adam_sum_duplicates_first_sgd_adds_them_one_by_one():
    a, b = 1.0, 2.0 ** -11  # float16: fl(a + b) = 1 (a tie to even), a + b apart is 1 + 2⁻¹⁰ after two additions
    for cls, kw in ((torch.optim.Adagrad, dict(lr=1.0)), (torch.optim.SparseAdam, dict(lr=1.0))):
        apart, summed = torch.zeros(1, dtype=torch.float16), torch.zeros(1, dtype=torch.float16)
        o1, o2 = cls([apart], **kw), cls([summed], **kw)
        apart.grad = _coo([0, 0], [a, b], 1, torch.float16)
        summed.grad = _coo([0], [1.0], 1, torch.float16)
        o1.step(), o2.step()
        assert torch.equal(apart, summed), cls  # coalesced: the same step as the single value fl(a + b) = 1
    # SGD, contiguous θ: add_dense_sparse_worker_non_coalesced_cpu adds each entry: 1 + (−1)·1 + (−1)·2⁻¹¹ = −2⁻¹¹
    p = torch.ones(1, dtype=torch.float16)
    opt = torch.optim.SGD([p], lr=1.0)
    p.grad = _coo([0, 0], [a, b], 1, torch.float16)
    opt.step()
    assert p.item() == -2.0 ** -11
    # non-contiguous θ: the slow path coalesces first: 1 − fl(1 + 2⁻¹¹) = 0
    buf = torch.ones(4, dtype=torch.float16)
    q = buf[::2]
    opt = torch.optim.SGD([q], lr=1.0)
    q.grad = _coo([0, 0], [a, b], 2, torch.float16)
    opt.step()
    assert q.tolist() == [0.0, 1.0]


# ---- the harness on fixed cases, torch and the NumPy port; broken ports are caught ---------------------------

#: sgd_sparse's fixed cases with momentum (no duplicate indices: not specified with momentum)
MOMENTUM_CASES = {"sgd_sparse-momentum": {"lr": 0.05, "momentum": 0.9, "dampening": 0.25, "maximize": True},
                  "sgd_sparse-nesterov": {"lr": 0.05, "momentum": 0.5, "nesterov": True}}


def _fixed_case(name: str, dtype: str = "float32") -> Case:
    if name in MOMENTUM_CASES:
        base = _fixed_case("sgd_sparse", dtype)
        grads = [[[np.ma.MaskedArray(np.ma.getdata(g), mask=np.ma.getmaskarray(g)) for g in row] for row in step]
                 for step in base.grads]
        return replace(base, groups=[Group(SGD.complete(MOMENTUM_CASES[name]), base.groups[0].params)], grads=grads)
    spec = spec_pkg.get(name)
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(6).astype(dtype)
    grads = []
    for rows, elems, dup_rows, dup_elems in (([1, 0, 1, 0], [1, 1, 0, 0, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0, 0, 1]),
                                             ([0, 0, 0, 0], [0, 1, 1, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0, 0, 0]),
                                             ([1, 1, 0, 1], [1, 0, 1, 0, 1, 1], [0, 1, 0, 1], [0, 0, 1, 0, 0, 0])):
        held_rows = np.broadcast_to(np.array(rows, bool)[:, None], (4, 3))
        twice_rows = np.broadcast_to(np.array(dup_rows, bool)[:, None], (4, 3))
        ga, gb = rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(6).astype(dtype)
        if spec.coalesces or spec.adds_duplicates_in_turn:
            row = [uncoalesced(ga, held_rows, twice_rows, rng.standard_normal((4, 3)).astype(dtype)),
                   uncoalesced(gb, np.array(elems, bool), np.array(dup_elems, bool), rng.standard_normal(6).astype(dtype))]
        else:
            row = [_sparse(ga, held_rows, dtype), _sparse(gb, elems, dtype)]
        grads.append([row])
    hyper = {"sparse_adam": {"lr": 0.05}, "adagrad_sparse": {"lr": 0.05, "lr_decay": 0.5,
                                                            "initial_accumulator_value": 0.1},
             "sgd_sparse": {"lr": 0.05, "maximize": True}}[name]
    return Case(name, dtype, [Group(spec.complete(hyper), [a, b])], grads)


@pytest.mark.parametrize("name", ["sgd_sparse", "adagrad_sparse", "sparse_adam", *MOMENTUM_CASES])
@pytest.mark.parametrize("backend", ["numpy", "torch-cpu"])
def test_torch_and_the_numpy_port_conform_on_a_fixed_case_with_duplicates(name, backend):
    data = _fixed_case(name)
    outputs = load(backend).run(for_backend(data, "for-loop"))
    for mode in ("trajectory", "step"):
        report = check(data, outputs, mode, scalars="float64")
        assert report.ok, (backend, mode, report.summary())


def _broken_run(monkeypatch, name: str, step, case: str = ""):
    import conformance.backends.numpy_backend as nb
    monkeypatch.setitem(nb._STEPS, name, step)
    data = _fixed_case(case or name)
    return check(data, load("numpy").run(for_backend(data, "for-loop")))


def test_adagrad_updating_untouched_state_is_caught(monkeypatch):
    import conformance.backends.numpy_backend as nb

    def broken(k, p, g, st, h, r):  # the sum takes the masked values' squares too
        out = nb._adagrad_sparse(k, p, g, st, h, r)
        values = np.ma.getdata(g)
        held = ~np.ma.getmaskarray(g)
        st["sum"] = np.where(held, st["sum"], k.add(st["sum"], k.mul(values, values)))
        return out

    report = _broken_run(monkeypatch, "adagrad_sparse", broken)
    assert not report.ok


def test_adagrad_with_a_per_element_step_counter_is_caught(monkeypatch):
    # the "lazy" counter: clr from the number of gradients the element had, not the tensor's step
    import conformance.backends.numpy_backend as nb

    def broken(k, p, g, st, h, r):
        held = ~np.ma.getmaskarray(g)
        count = st.setdefault("held", np.zeros(p.shape)) + held
        st["held"] = count
        out = p.copy()
        for t in np.unique(count[held]):
            one = dict(st, step=float(t) - 1)
            mask = held & (count == t)
            res = nb._adagrad_sparse(k, p, np.ma.MaskedArray(np.ma.getdata(g), mask=~mask), one, h, r)
            out, st["sum"] = np.where(mask, res, out), np.where(mask, one["sum"], st["sum"])
        st["step"] += 1
        return out

    report = _broken_run(monkeypatch, "adagrad_sparse", broken)
    assert not report.ok


@pytest.mark.parametrize("name", ["adagrad_sparse", "sparse_adam"])
def test_taking_the_last_duplicate_instead_of_the_sum_is_caught(monkeypatch, name):
    import conformance.backends.numpy_backend as nb
    real_run = nb.NumpyBackend.run

    def run(self, case):  # coalescing by "the last entry wins" (a scatter, not a sum)
        grads = [[[np.ma.MaskedArray(np.where(g.twice, g.second, np.ma.getdata(g)), mask=np.ma.getmaskarray(g))
                   if isinstance(g, Uncoalesced) else g for g in row] for row in step] for step in case.grads]
        return real_run(self, replace(case, grads=grads))

    monkeypatch.setattr(nb.NumpyBackend, "run", run)
    data = _fixed_case(name)
    assert not check(data, load("numpy").run(for_backend(data, "for-loop"))).ok


def test_sgd_stepping_every_element_is_caught(monkeypatch):
    import conformance.backends.numpy_backend as nb

    def broken(k, p, g, st, h, r):  # the masked values stepped too
        return nb._sgd_sparse(k, p, np.ma.MaskedArray(np.ma.getdata(g)), st, h, r)

    assert not _broken_run(monkeypatch, "sgd_sparse", broken).ok


@pytest.mark.parametrize("case", MOMENTUM_CASES)
def test_sgd_momentum_moving_only_where_the_step_holds_an_entry_is_caught(monkeypatch, case):
    import conformance.backends.numpy_backend as nb

    def broken(k, p, g, st, h, r):  # the "lazy" update: θ kept wherever this step's gradient holds no entry
        return np.where(np.ma.getmaskarray(g), p, nb._sgd_sparse(k, p, g, st, h, r))

    assert not _broken_run(monkeypatch, "sgd_sparse", broken, case).ok
