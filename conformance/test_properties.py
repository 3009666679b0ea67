"""Properties of an optimizer implementation that need no reference: the backend against itself.

Each test compares two runs of the same backend that must agree bit for bit
(NaN-safe: two NaNs agree whatever their payloads), or checks one run for a
property of the protocol:

* ``maximize=True`` is gradient descent on the negated gradient;
* a parameter without a gradient is left alone, and its state does not advance;
* stepping several tensors of one group together equals stepping each alone;
* saving the state mid-trajectory and going on in a fresh, restored optimizer
  changes nothing (backends declaring ``supports_resume``);
* the same inputs give the same outputs twice;
* the backend's default hyperparameters are the spec's (backends with ``defaults``);
* hyperparameters outside the spec's domain, and combinations the spec forbids,
  are refused;
* Muon's observed orthogonalisation O is the backend's own NS sequence on the U it reported, within the derived
  singular-value enclosures, and exactly invariant under U·2ᵏ, Uᵀ and sign flips (conformance/newton_schulz.py).

Known deviations apply to these tests only where an entry of ``conformance/known_deviations.py`` names
the test: an implementation's departure from the spec's values is not a property failure.

Cases are small (at most ``MAX_STEPS`` steps).  Every failure carries the
``Reproduce with:`` block of ``conformance.replay`` for the case (or cases) involved.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, note, strategies as st

import spec as spec_pkg
from spec.schedules import REQUIRED
from reference.formats import to_hex
from reference.sparse import Uncoalesced, uncoalesced

from . import newton_schulz as ns, optimizers
from .backend import Case, Group, check_output, for_backend
from .replay import reproduction
from .harness import KnownDeviationMet, expected_by_known_deviation, set_aside_known
from .plugin import closure_specs_asked_for, selected_specs
from .strategies import HELD, SHAPES, array, cases, sparse_gradient

MAX_STEPS = 4

#: Hyperparameter combinations each spec's constraints forbid (conformance/optimizers.py's ``invalid``).
CONSTRAINT_VIOLATIONS = {name: info.constraint_violations for name, info in optimizers.ALL.items()}
#: the dialects' (spec.dialects), which have no record in conformance/optimizers.py
CONSTRAINT_VIOLATIONS["adafactor@transformers"] = ({"relative_step": False, "warmup_init": True, "lr": 0.01},)


# --------------------------------------------------------------------------- parametrization

def pytest_generate_tests(metafunc):
    """``spec_name``: one test per selected spec (for tests that do not depend on path or dtype)."""
    if "spec_name" in metafunc.fixturenames:
        not_applicable = [pytest.param(n, marks=pytest.mark.skip(reason=spec_pkg.CLOSURE_OPTIMIZERS[n].why), id=n)
                          for n in closure_specs_asked_for(metafunc.config)]
        metafunc.parametrize("spec_name", [*selected_specs(metafunc.config), *not_applicable])


# --------------------------------------------------------------------------- helpers

def _repro(request, case: Case, path: str, label: str = "") -> str:
    text = reproduction(case, request.config.getoption("--backend"), path, "trajectory",
                        getattr(request.config, "_conformance_overrides", None),
                        **getattr(request.config, "_conformance_mapping", {}))
    return (f"# {label}\n" if label else "") + text


def _fail(request, path: str, message: str, *labelled_cases) -> None:
    """Fail with ``message`` and the reproduction of each (label, Case)."""
    repros = "\n".join(_repro(request, case, path, label) for label, case in labelled_cases)
    note(message)
    expected = expected_by_known_deviation(request)
    if expected:  # a whole-test known deviation: end at once, as harness.run_and_check does, without shrinking
        raise KnownDeviationMet(f"{expected}\n{message}\n\nReproduce with:\n{repros}")
    raise AssertionError(f"{message}\n\nReproduce with:\n{repros}")


def _run(request, backend, case: Case, path: str, label: str, **fields):
    """The backend's outputs for ``case`` with ``fields`` (``resume_at``) set; a raise fails with a reproduction.

    The known deviations see ``fields`` too: one may concern resumed runs only."""
    run = replace(case, **fields)
    set_aside_known(request, run, path)
    bound = for_backend(run, path)
    try:
        outputs = backend.run(bound)
        check_output(bound, outputs)
    except Exception as exc:  # BackendError, or any raise on valid inputs
        extra = "".join(f", {k}={v!r}" for k, v in fields.items())
        _fail(request, path, f"{label}: backend raised {type(exc).__name__}: {exc}{extra}", (label, case))
    return outputs


def _float_like(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or a.dtype.name == "bfloat16"


def _show(x) -> str:
    try:
        return f"{to_hex(x)} ({float(x)!r})"
    except Exception:
        return repr(x)


def _index(idx: tuple) -> str:
    return str([int(k) for k in idx]) if idx else ""


def _diff_values(where: str, x, y, out: list, limit: int = 3) -> None:
    """Append to ``out`` how ``x`` and ``y`` differ, bit for bit; NaN equals NaN whatever its payload."""
    if x is None or y is None:
        if (x is None) != (y is None):
            out.append(f"{where}: {x!r} vs {y!r}")
        return
    ax, ay = np.asarray(x), np.asarray(y)
    if ax.shape != ay.shape or (ax.dtype != ay.dtype and not (_float_like(ax) and _float_like(ay))):
        out.append(f"{where}: {ax.dtype}{list(ax.shape)} vs {ay.dtype}{list(ay.shape)}")
        return
    if ax.dtype != ay.dtype:  # e.g. a state variable kept in another dtype after a restore
        fx, fy = ax.astype(np.float64), ay.astype(np.float64)
        differ = (fx != fy) & ~(np.isnan(fx) & np.isnan(fy))
        values = "; ".join(f"{_index(i)}{_show(ax[i])} vs {_show(ay[i])}"
                           for i in [tuple(k) for k in np.argwhere(differ)][:limit])
        out.append(f"{where}: dtype {ax.dtype} vs {ay.dtype}; " + (f"values {values}" if values else "same values"))
        return
    if not _float_like(ax):
        if not np.array_equal(ax, ay):
            out.append(f"{where}: {ax!r} vs {ay!r}")
        return
    unsigned = np.dtype(f"u{ax.dtype.itemsize}")
    bx = np.array(ax, order="C").view(unsigned)
    by = np.array(ay, order="C").view(unsigned)
    differ = bx != by
    if differ.any():
        differ &= ~(np.isnan(ax.astype(np.float64)) & np.isnan(ay.astype(np.float64)))
    for idx in [tuple(i) for i in np.argwhere(differ)][:limit]:
        out.append(f"{where}{_index(idx)}: {_show(ax[idx])} vs {_show(ay[idx])}")
    if int(differ.sum()) > limit:
        out.append(f"{where}: ... {int(differ.sum()) - limit} more elements differ")


def _diff_states(where: str, sx, sy, out: list) -> None:
    if sx is None or sy is None:
        return  # a backend that exposes no state: only parameters can be compared
    for key in sorted(set(sx) | set(sy)):
        if key not in sx or key not in sy:
            out.append(f"{where}, state {key!r}: only in the {'first' if key in sx else 'second'} run")
        else:
            _diff_values(f"{where}, {key}", sx[key], sy[key], out)


def _state_of(out, i, j):
    return None if out.state is None else out.state[i][j]


def _diff_runs(a: list, b: list, pairs=None) -> list:
    """How two runs differ: ``pairs`` maps (i, j) of ``a`` to (run, i', j') of ``b`` (identity by default)."""
    out = []
    for s, oa in enumerate(a):
        for i, params in enumerate(oa.params):
            for j, p in enumerate(params):
                if pairs is None:
                    ob, bi, bj = b[s], i, j
                else:
                    run, bi, bj = pairs[(i, j)]
                    ob = run[s]
                where = f"step {s + 1}, group {i}, param {j}"
                _diff_values(f"{where}, theta", p, ob.params[bi][bj], out)
                _diff_states(where, _state_of(oa, i, j), _state_of(ob, bi, bj), out)
    return out


def _describe(out: list, limit: int = 12) -> str:
    text = "\n".join("  " + line for line in out[:limit])
    return text + (f"\n  ... and {len(out) - limit} more" if len(out) > limit else "")


def _negate(g):
    """``-g`` exactly: the sign bit flipped (as torch's ``neg``), NaN and zeros included."""
    if g is None:
        return None
    if isinstance(g, Uncoalesced):  # duplicate indices: both values negated (−a + −b = −(a + b) in any rounding)
        return uncoalesced(_negate(np.ma.getdata(g)), ~np.ma.getmaskarray(g), g.twice.copy(), _negate(g.second))
    if isinstance(g, np.ma.MaskedArray):  # a sparse gradient: its values negated, the same index set
        return np.ma.MaskedArray(_negate(np.ma.getdata(g)), mask=np.ma.getmaskarray(g).copy())
    a = np.array(g, order="C")  # a copy; 0-d stays 0-d
    unsigned = np.dtype(f"u{a.dtype.itemsize}")
    sign = unsigned.type(1 << (8 * a.dtype.itemsize - 1))
    return (a.view(unsigned) ^ sign).view(a.dtype).reshape(a.shape)


def _with_hyper(case: Case, **changes) -> Case:
    return replace(case, groups=[Group({**h, **changes}, [p.copy() for p in ps]) for h, ps in case.groups])


def _add_param(draw, data: Case, i: int, *, with_grads: bool) -> tuple:
    """``data`` with one more parameter in group ``i`` (at a drawn position), and that position."""
    ndims = spec_pkg.get(data.optimizer).ndims  # a spec for matrices only (Muon) gets a matrix
    shape = draw(st.sampled_from([sh for sh in SHAPES if not ndims or len(sh) in ndims]), label="extra param shape")
    p = draw(array(data.dtype, shape), label="extra param")
    hyper, params = data.groups[i]
    j = draw(st.integers(0, len(params)), label="extra param position")
    groups = list(data.groups)
    groups[i] = Group(hyper, params[:j] + [p] + params[j:])
    grads = []
    for row in data.grads:
        row = list(row)
        spec = spec_pkg.get(data.optimizer)
        g = None if not with_grads else draw(sparse_gradient(data.dtype, shape, spec.coalesces)
                                             if spec.sparse_gradients else array(data.dtype, shape))
        row[i] = list(row[i][:j]) + [g] + list(row[i][j:])
        grads.append(row)
    return replace(data, groups=groups, grads=grads), j


# --------------------------------------------------------------------------- properties

@given(data=st.data())
def test_maximize_is_descent_on_the_negated_gradient(req, backend, optimizer, path, dtype, data):
    """maximize=True gives bit-identical parameters (and state) to maximize=False with -g."""
    spec = spec_pkg.get(optimizer)
    if "maximize" not in {h.name for h in spec.flags}:
        pytest.skip(f"spec {optimizer} has no maximize flag")
    if "maximize" in HELD.get(optimizer, {}):
        pytest.skip(f"maximize is held at {HELD[optimizer]['maximize']} (--hold): the class has no "
                    "maximize keyword")
    base = data.draw(cases(spec, dtype, max_steps=MAX_STEPS), label="case")
    up = _with_hyper(base, maximize=True)
    down = replace(_with_hyper(base, maximize=False),
                   grads=[[[_negate(g) for g in row] for row in step] for step in base.grads])
    a = _run(req, backend, up, path, "maximize=True")
    b = _run(req, backend, down, path, "maximize=False on -g")
    diffs = _diff_runs(a, b)
    if diffs:
        _fail(req, path,
              f"{optimizer} {path} {dtype}: maximize=True on g differs from maximize=False on -g "
              f"(first run vs second):\n{_describe(diffs)}",
              ("maximize=True on g", up), ("maximize=False on -g", down))


@given(data=st.data())
def test_parameter_without_gradient_is_left_alone(req, backend, optimizer, path, dtype, data):
    """A parameter whose grad is None at every step keeps its bits, and its state does not advance."""
    spec = spec_pkg.get(optimizer)
    base = data.draw(cases(spec, dtype, max_steps=MAX_STEPS), label="case")
    i = data.draw(st.integers(0, len(base.groups) - 1), label="group of the idle param")
    case, j = _add_param(data.draw, base, i, with_grads=False)
    outputs = _run(req, backend, case, path, "idle param")
    p0 = case.groups[i][1][j]
    problems = []
    first_state, first_step, seen_empty = None, None, False
    for s, out in enumerate(outputs):
        where = f"step {s + 1}, group {i}, param {j} (never has a gradient)"
        _diff_values(f"{where}, theta vs its initial value", out.params[i][j], p0, problems)
        st_ = _state_of(out, i, j)
        if not st_:
            if first_state:
                problems.append(f"{where}: its state {sorted(first_state)} disappeared")
            seen_empty = True
            continue
        if "step" in st_ and float(st_["step"]) != 0:
            problems.append(f"{where}: step counter is {float(st_['step'])!r}, expected 0 (never stepped)")
        if first_state is None:
            if seen_empty:
                problems.append(f"{where}: state {sorted(st_)} appeared after an empty one")
            first_state, first_step = st_, s + 1
        else:
            _diff_states(f"{where}, vs its state at step {first_step}", st_, first_state, problems)
    if problems:
        _fail(req, path, f"{optimizer} {path} {dtype}: a parameter with no gradient changed:\n"
              f"{_describe(problems)}", (f"group {i}, param {j} has grad None throughout", case))


@given(data=st.data())
def test_several_tensors_at_once_equal_each_alone(req, backend, optimizer, path, dtype, data):
    """Stepping the tensors of one group together is bit-identical to stepping each in its own optimizer."""
    spec = spec_pkg.get(optimizer)
    case = data.draw(cases(spec, dtype, max_steps=MAX_STEPS, max_groups=1, max_params=3), label="case")
    if len(case.groups[0][1]) == 1:
        case, _ = _add_param(data.draw, case, 0, with_grads=True)
    set_aside_known(req, case, path)
    together = _run(req, backend, case, path, "all params in one group")
    hyper, params = case.groups[0]
    pairs, alone_cases = {}, []
    for j, p in enumerate(params):
        alone = Case(case.optimizer, dtype, [Group(dict(hyper), [p.copy()])],
                     [[[step[0][j]]] for step in case.grads],
                     None if case.lrs is None else [[lrs[0]] for lrs in case.lrs])
        alone_cases.append(alone)
        pairs[(0, j)] = (_run(req, backend, alone, path, f"param {j} alone"), 0, 0)
    diffs = _diff_runs(together, None, pairs)
    if diffs:
        _fail(req, path, f"{optimizer} {path} {dtype}: {len(params)} tensors stepped together differ from "
              f"each stepped alone (together vs alone):\n{_describe(diffs)}",
              ("together", case), *((f"param {j} alone", c) for j, c in enumerate(alone_cases)))


@given(data=st.data())
def test_resume_from_saved_state_continues_identically(req, backend, optimizer, path, dtype, data):
    """Saving the state before a step and going on in a fresh restored optimizer changes no bit."""
    if not getattr(backend, "supports_resume", False):
        pytest.skip(f"backend {req.config.getoption('--backend')} does not declare supports_resume = True "
                    "(Case.resume_at): saving and restoring optimizer state is not tested")
    spec = spec_pkg.get(optimizer)
    case = data.draw(cases(spec, dtype, max_steps=MAX_STEPS, min_steps=2), label="case")
    resume_at = data.draw(st.one_of(st.integers(1, len(case.grads) - 1), st.just(0)), label="resume_at")
    straight = _run(req, backend, case, path, "uninterrupted")
    resumed = _run(req, backend, case, path, f"resumed before step {resume_at + 1}", resume_at=resume_at)
    diffs = _diff_runs(resumed, straight)
    if diffs:
        _fail(req, path, f"{optimizer} {path} {dtype}: saving the state before step {resume_at + 1} "
              f"(resume_at={resume_at}) and restoring it in a fresh optimizer changes the trajectory "
              f"(resumed vs uninterrupted):\n{_describe(diffs)}",
              (f"replay() runs it uninterrupted; the failing run sets Case.resume_at={resume_at}", case))


@given(data=st.data())
def test_same_inputs_same_outputs(req, backend, optimizer, path, dtype, data):
    """Two runs of the same case are bit-identical."""
    spec = spec_pkg.get(optimizer)
    case = data.draw(cases(spec, dtype, max_steps=MAX_STEPS), label="case")
    first = _run(req, backend, case, path, "first run")
    second = _run(req, backend, case, path, "second run")
    diffs = _diff_runs(first, second)
    if diffs:
        _fail(req, path, f"{optimizer} {path} {dtype}: the same case gave different results twice "
              f"(first vs second):\n{_describe(diffs)}", ("run twice", case))


def test_defaults_are_the_specs(request, backend, spec_name):
    """The backend's default hyperparameters equal the spec's (an --optimizer class included)."""
    name = request.config.getoption("--backend")
    if not callable(getattr(backend, "defaults", None)):
        pytest.skip(f"backend {name} has no defaults(optimizer) method: its defaults are not checked")
    if not list(backend.paths(spec_name)):
        pytest.skip(getattr(backend, "skip_reason", None) or f"backend {name} does not implement {spec_name}")
    spec = spec_pkg.get(spec_name)
    got = backend.defaults(spec_name)
    present = [h for h in spec.hyperparameters if h.name in got]
    if not present:
        pytest.skip(f"backend {name} declares no default for any hyperparameter of {spec_name}: {sorted(got)}")
    wrong = []
    for h in present:
        value = got[h.name]
        if h.default is REQUIRED:  # the spec's code has no default (TF1's lr): a default is a difference
            ok = False
        elif h.is_flag:
            ok = isinstance(value, (bool, np.bool_)) and bool(value) == h.default
        elif h.default is None:  # None means a value of its own (Adafactor's eps1: the dtype's machine epsilon)
            ok = value is None
        else:
            ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
                  and float(value) == float(h.default))
        if not ok:
            wrong.append(f"  {h.name}: backend default {value!r}, spec default {h.default!r}")
    cls = getattr(backend, "optimizer_class", lambda _: None)(spec_name)
    label = f" ({cls.__module__}.{cls.__qualname__})" if isinstance(cls, type) else ""
    missing = [h.name for h in spec.hyperparameters if h.name not in got]
    assert not wrong, (f"backend {name}, {spec_name}{label}: defaults differ from the spec's:\n" + "\n".join(wrong)
                       + (f"\n(no default declared for: {', '.join(missing)})" if missing else ""))


def _out_of_domain(h) -> list:
    """Finite values just outside a hyperparameter's domain, one per side with a finite bound."""
    d = h.domain
    values = []
    if d.lo is not None:
        values += [d.lo - 1e-3] + ([] if d.lo_closed else [d.lo])
    if d.hi is not None:
        values += ([d.hi + 1e-3] if d.hi_closed else [d.hi]) + [d.hi + 0.5]
    return [v for v in values if math.isfinite(v) and v not in d]


@given(data=st.data())
def test_out_of_domain_hyperparameters_are_refused(req, backend, optimizer, path, dtype, data):
    """A value just outside a hyperparameter's domain, or a forbidden combination, makes run() raise."""
    spec = spec_pkg.get(optimizer)
    base = data.draw(cases(spec, dtype, max_steps=1), label="case")
    bad = [({h.name: v}, f"{h.name}={v!r} outside {h.domain.describe()}")
           for h in spec.numeric for v in _out_of_domain(h)]
    if spec.constraints and not CONSTRAINT_VIOLATIONS.get(optimizer):
        raise AssertionError(f"spec {optimizer} has constraints ({'; '.join(c.doc for c in spec.constraints)}) but "
                             "its record in conformance/optimizers.py has no invalid example breaking them")
    bad += [(v, f"{', '.join(f'{k}={x!r}' for k, x in v.items())}: {'; '.join(c.doc for c in spec.constraints)}")
            for v in CONSTRAINT_VIOLATIONS.get(optimizer, ())]
    if not bad:
        pytest.skip(f"spec {optimizer} has no bounded hyperparameter and no constraint")
    accepted = []
    for changes, why in bad:
        case = _with_hyper(base, **changes)
        for hyper, _ in case.groups:  # the table and the bounds must agree with the spec itself
            with pytest.raises(spec_pkg.InvalidHyperparameter):
                spec.complete(hyper)
        try:
            backend.run(for_backend(case, path))
        except Exception:
            continue
        accepted.append((why, case))
    if accepted:
        _fail(req, path, f"{optimizer} {path} {dtype}: run() accepted hyperparameters the spec refuses "
              "(set in every group):\n" + "\n".join(f"  {why}" for why, _ in accepted),
              *((why, case) for why, case in accepted))


@given(data=st.data())
def test_newton_schulz_output_is_the_sequence_and_within_its_enclosures(req, backend, optimizer, path, dtype, data):
    """Muon's observed O (``State.observed`` ``ortho``), which the element-wise tests take as given: for every step
    and tensor with a gradient, O is bit for bit the backend's own NS sequence re-executed on the U it reported
    (``backend.newton_schulz``: torch's bfloat16 statements with torch's kernels, for the torch backend), each
    iterate's singular values lie within the derived enclosures, and the sequence is exactly invariant under U·2ᵏ,
    Uᵀ and sign flips (conformance/newton_schulz.py)."""
    spec = spec_pkg.get(optimizer)
    if "ortho" not in spec.observed:
        pytest.skip(f"spec {optimizer} has no observed orthogonalisation (only Muon's)")
    how = getattr(backend, "newton_schulz", None)
    if not callable(how):
        pytest.skip(f"backend {req.config.getoption('--backend')} has no newton_schulz(optimizer, path): the NS "
                    "sequence it runs is not known, so O is checked by nothing")
    sequence = how(optimizer, path)
    case = data.draw(cases(spec, dtype, max_steps=2), label="case")  # two steps: a buffer with history, CI's time
    outputs = _run(req, backend, case, path, "run")
    problems = []
    for s, out in enumerate(outputs):
        for i, (hyper, params) in enumerate(case.groups):
            h = spec.complete(hyper)
            coeffs = (h["ns_a"], h["ns_b"], h["ns_c"], int(h["ns_steps"]), h["eps"])
            for j in range(len(params)):
                if case.grads[s][i][j] is None:
                    continue
                st_ = _state_of(out, i, j) or {}
                if "update" not in st_ or "ortho" not in st_:
                    problems.append(f"step {s + 1}, group {i}, param {j}: no update/ortho reported")
                    continue
                where = f"step {s + 1}, group {i}, param {j}"
                problems += [f"{where}: {f}" for f in ns.check_applied(sequence, st_["update"], st_["ortho"],
                                                                       *coeffs)]
                if s == 0:  # the invariances once per tensor (four more runs of the sequence each)
                    problems += [f"{where}: {f}" for f in ns.invariance_failures(sequence, st_["update"], *coeffs)]
    if problems:
        _fail(req, path, f"{optimizer} {path} {dtype}: the applied Newton–Schulz output departs:\n"
              f"{_describe(problems)}", ("run", case))
