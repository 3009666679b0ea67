"""Compare a backend's trajectory with the reference and the tolerance model.

Every output element (the parameter and each exposed state variable, at every
step) gets a verdict:

* ``ok``: finite, and within the error bound of ``reference.bound`` (the
  bound any implementation of the spec's operations in that format meets).
* ``fail``: outside the bound, or NaN/inf where the exact result is finite.
* ``limited``: the format cannot carry this computation faithfully (a value
  exceeds the largest finite number, a divisor or a square-root argument may
  round to zero or below): a limitation of the dtype, not of the backend;
  any answer is accepted and the reason is reported.
* ``special``: a step with NaN or inf among its inputs (or a 0/0 in exact
  arithmetic); only the IEEE class is checked: NaN where the exact rules give
  NaN, the same infinity, finite where finite.

Two engines give the same verdicts and failures: ``fast`` (the default) runs
``reference.fast`` over whole tensors, decides the plainly certified elements
vectorised (``fast_verdicts``, with a safety margin of 2⁻²⁰ of the bound, as the
fast bound may exceed ``reference.bound``'s by a rounding), and runs the exact
comparison (``_compare``, with ``reference.step``/``reference.bound`` on those
elements only) for everything else: failures, limited and special values,
phase-2 elements and the element with the largest error ratio of each
parameter.  The elements decided in bulk are counted in ``Report.bulk``
(``Bulk``), with two statistics estimated: their ULP errors (the float64
|got − midpoint| / ulp(midpoint)) and lost updates (θ unchanged where the exact
value's computation rounds counts as lost when more than 256 of a tensor's
values at a step are such; fewer are decided exactly; see ``_compare_fast``).  ``interval`` compares
every element exactly, as the fast engine's test oracle.

Two modes: ``trajectory`` compares step k with the exact k-step trajectory from
the initial values (errors compound, and the bound carries them); ``step``
compares each step with one exact step from the backend's own previous state
(needs the backend to expose its state), which localises a fault to a step.  A
step that reads a state variable the backend did not report (after the
parameter's first step with a gradient: torch creates state lazily, and before
it the spec's initial value is the state) is not checked: its values count as
``unchecked`` (``Bulk``), and ``Report.state_unknown`` and ``Report.notes`` say
which variables were missing; trajectory mode checks that parameter all the same.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Optional

import mpmath
import numpy as np

import spec as spec_pkg
from reference.bound import EITHER_BRANCH, trajectory_bounds
from reference.fast import U, _up, fast_reference_and_bounds_many, fast_verdicts
from reference.driver import hyper_schedule
from reference.formats import exact, get_format, to_hex
from reference.program import state_read
from reference.sparse import coalesce, duplicates
from reference.step import Snapshot, Unstable, trajectory
from reference.ulp import ulp_error

from .backend import Case, contiguous

_CTX = mpmath.MPContext()
_CTX.prec = 256


@dataclass
class Finding:
    step: int
    group: int
    param: int
    index: tuple
    quantity: str  # "theta" or a state name
    got: object
    exact: object  # mpf, or float nan/inf
    bound: object  # mpf or inf
    ulp: float
    ratio: float
    verdict: str
    why: str = ""
    lost_update: bool = False

    def describe(self, dtype: str) -> str:
        where = f"step {self.step + 1}, group {self.group}, param {self.param}{list(self.index)}, {self.quantity}"
        ex = mpmath.nstr(self.exact, 17) if isinstance(self.exact, mpmath.mpf) else repr(self.exact)
        return (f"{where}: got {to_hex(self.got)} ({float(self.got)!r}), exact {ex}, "
                f"error {self.ulp:.4g} ulp, bound {mpmath.nstr(self.bound, 4)} → {self.ratio:.3g}× the bound"
                + (f" [{self.why}]" if self.why else ""))


# The exact comparison costs milliseconds per element and step: a case whose tensors phase 1 cannot decide (a
# format limitation of every element, say) or that fails everywhere is described by its first elements.
DESCRIBED_FAILURES = 16  # certainly failing elements compared exactly per tensor: the lowest indices, each step's first
EXACT_LIMIT = 48  # undecided elements compared exactly per case (parameters in order, lowest indices first)
# Certified within the bound but not known to be lost (θ unchanged, the exact value within binary64's radius of θ):
# only the lost-update statistic needs them exactly, so they neither take EXACT_LIMIT's places nor cost more than
# this many per case; past it such a value counts as lost (about 4 in 5 compared exactly were, session 23).
LOST_LIMIT = 8
#: log2 of bound / |Δθ| is counted in integer bins, clipped to these (the top one holds an infinite ratio: a
#: step that did not move θ while its bound is positive)
RESOLUTION_RANGE = (-80, 20)


@dataclass
class Bulk:
    """``count`` values of one (step, group, param, quantity) decided in bulk.

    ``verdict`` "ok": certified within their bound; ``lost`` of them lost updates; ``max_ulp`` their
    largest ULP error (a float64 estimate).  ``verdict`` "limited": format-limited for the reasons
    ``why`` of a scalar they were computed from (``reference.fast.FastBounds.limited``); any value
    is accepted, ``lost`` is 0 and ``max_ulp`` NaN, as for a limited ``Finding``.  ``verdict``
    "fail": certainly outside their bound (the fast enclosure of the error lies above it), beyond the
    failing elements described exactly (``DESCRIBED_FAILURES``).  ``verdict`` "unchecked": values
    phase 1 could not decide, beyond the ``EXACT_LIMIT`` elements of the case compared exactly: not
    known to conform, named in ``Report.notes``.  ``verdict`` "aside": not compared at all, as a known
    deviation of the implementation named in ``why`` covers them (``check``'s ``aside``)."""

    step: int
    group: int
    param: int
    quantity: str
    count: int
    lost: int
    max_ulp: float
    verdict: str = "ok"
    why: str = ""


class Verdicts:
    """``failures`` and ``ok`` of a report whose ``findings`` carry a ``verdict`` (optimizer and schedule reports)."""

    @property
    def failures(self) -> list:
        return [f for f in self.findings if f.verdict == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Report(Verdicts):
    """All findings of one case, with summary statistics."""

    optimizer: str
    dtype: str
    mode: str
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # what was not checked, and why (printed by summary)
    bulk: list = field(default_factory=list)  # Bulk: values found within the bound without a Finding
    exact_left: int = field(default=EXACT_LIMIT, repr=False)  # undecided elements the case may still compare exactly
    lost_left: int = field(default=LOST_LIMIT, repr=False)  # the same for undecided lost updates (LOST_LIMIT)
    # (ratio, compare) per tensor (and step): its bulk value of the largest error ratio, and the function comparing
    # that element exactly; ``check`` calls the largest one's, so that ``worst`` is described exactly
    best: list = field(default_factory=list, repr=False)
    # Resolution: per θ value, ⌊log2(bound / |Δθ|)⌋ → count (``add_resolution``); bin ≥ 0 is blind.
    resolution: Counter = field(default_factory=Counter)
    # The same per state variable: name → Counter, from the second step on (the step before must be exposed)
    state_resolution: dict = field(default_factory=dict)
    # Single steps not checked because they read state the backend did not report (``StateUnknown``)
    state_unknown: list = field(default_factory=list)

    def add_resolution(self, bound, value, prev, quantity: str = "theta") -> None:
        """Count how small a slip the check of these values of ``quantity`` (θ or a state variable) can see: the
        bound over the step's change |value − prev| (``value`` the exact value after the step, ``prev`` the
        implementation's value before it).  A value is *blind* when its bound is at least the change: any slip
        smaller than the step passes.  Values without a finite bound (format-limited, non-finite) and steps
        checked exactly (bound and change both 0) are left out.  Both engines count it (``_add_resolution``)."""
        with np.errstate(all="ignore"):
            change = np.abs(np.asarray(value, dtype=np.float64) - np.asarray(prev).astype(np.float64)).reshape(-1)
            bound = np.asarray(bound, dtype=np.float64).reshape(-1)
            keep = np.isfinite(bound) & np.isfinite(change) & ~((bound == 0) & (change == 0))
            lo, hi = RESOLUTION_RANGE
            bins = np.clip(np.floor(np.log2(bound[keep] / change[keep])), lo, hi)
            bins = np.where(np.isnan(bins), lo, bins).astype(np.int64)  # 0/0 is excluded above; NaN cannot stay
        counts = self.resolution if quantity == "theta" else self.state_resolution.setdefault(quantity, Counter())
        counts.update(dict(zip(*(a.tolist() for a in np.unique(bins, return_counts=True)))))

    @property
    def ok(self) -> bool:
        return not self.failures and not any(b.verdict == "fail" for b in self.bulk)

    def failed_values(self) -> int:
        return len(self.failures) + sum(b.count for b in self.bulk if b.verdict == "fail")

    def values(self) -> int:
        """How many values were compared (findings and bulk; not those set aside)."""
        return len(self.findings) + sum(b.count for b in self.bulk if b.verdict != "aside")

    def lost_updates(self) -> int:
        return sum(f.lost_update for f in self.findings) + sum(b.lost for b in self.bulk)

    def worst(self) -> Optional[Finding]:
        checked = [f for f in self.findings if f.verdict in ("ok", "fail")]
        return max(checked, key=lambda f: (f.ratio, f.ulp), default=None)

    def max_ratio(self) -> float:
        w = self.worst()
        return w.ratio if w else 0.0

    def counts(self) -> dict:
        out = {}
        for f in self.findings:
            out[f.verdict] = out.get(f.verdict, 0) + 1
        for b in self.bulk:
            out[b.verdict] = out.get(b.verdict, 0) + b.count
        order = ("ok", "fail", "limited", "special", "unchecked", "aside")  # fixed, whichever engine found which verdict first
        return {k: out[k] for k in sorted(out, key=lambda k: order.index(k) if k in order else len(order))}

    def limited_reason(self) -> Optional[str]:
        """The reason of the first format-limited value (a finding's, else a bulk's), or None."""
        return next((f.why for f in self.findings if f.verdict == "limited"),
                    next((b.why for b in self.bulk if b.verdict == "limited"), None))

    def first_failure(self) -> Optional[Finding]:
        """The earliest failing step; among its failures the parameter first, then state."""
        if not self.failures:
            return None
        return min(self.failures, key=lambda f: (f.step, f.quantity != "theta", -f.ratio))

    def summary(self, limit: int = 8) -> str:
        lines = [f"{self.optimizer} {self.dtype} ({self.mode}): {self.failed_values()} of "
                 f"{self.values()} values outside the tolerance; verdicts {self.counts()}"]
        first = self.first_failure()
        if first:
            lines.append("first departure: " + first.describe(self.dtype))
        for f in sorted(self.failures, key=lambda f: -f.ratio)[:limit]:
            lines.append("  " + f.describe(self.dtype))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class StateUnknown:
    """Step ``step`` (from 0) of parameter ``param`` of group ``group`` was not checked from one exact step: it reads
    the state variables ``missing``, which the backend's state after the step before does not hold (it held
    ``reported``; all but ``step`` are state names it reported, spec names or not)."""

    step: int
    group: int
    param: int
    missing: tuple
    reported: tuple


def _held(lrs: list) -> list:
    """``lrs`` (one group's lr set before each step, ``None``: unchanged) as the lr in force at each step: a
    ``None`` repeats the last lr set, as torch's ``group["lr"]`` keeps it (``None`` before any: the group's own)."""
    out, last = [], None
    for lr in lrs:
        last = last if lr is None else lr
        out.append(last)
    return out


def _unknown_state(spec, hyper, lr, state, count, grad) -> frozenset:
    """The state variables that one exact step from the backend's ``state`` (name → array, or None where the
    backend exposes none) would read but ``state`` lacks.  None before the parameter's first step with a gradient
    (``count`` = 0: its state is then the spec's initial value, which torch creates lazily) or at a step without a
    gradient (nothing is read); otherwise those that ``reference.program.state_read`` finds the step reads to
    compute θ and the state variables the backend reports, for the hyperparameters in force (``lr``: this step's
    list, as ``trajectory`` takes it) at step counter ``count`` + 1, for a parameter of ``grad``'s shape."""
    if count == 0 or grad is None:
        return frozenset()
    names = {st.name for st in spec.state if st.name != "step" and not st.observed}  # observed: the step's own
    reported = names & set(state or ())
    if reported == names:
        return frozenset()
    in_force = hyper_schedule(spec, hyper, 1, lrs=lr, validate=False)[0]
    return state_read(spec, in_force, ["theta", *sorted(reported)], count + 1, np.shape(grad)) - reported \
        - set(spec.observed)


def _not_checked(report, s, i, j, out, names, missing, state) -> None:
    """Count step ``s``'s values of parameter (``i``, ``j``) as unchecked: the exact step would need the state
    variables ``missing``, which the backend's ``state`` before it lacks (``_unknown_state``)."""
    report.state_unknown.append(StateUnknown(s, i, j, tuple(sorted(missing)), tuple(sorted(map(str, state or ())))))
    why = f"single step not checked: the backend reported no {', '.join(sorted(missing))} before it"
    for name, arr in _quantities([], s, i, j, out, names - {"step"}, None):
        report.bulk.append(Bulk(s, i, j, name, int(np.size(arr)), 0, math.nan, "unchecked", why))


def _note_unknown(report) -> None:
    """One note per parameter whose single steps ``_not_checked`` left out."""
    per_param = {}
    for u in report.state_unknown:
        per_param.setdefault((u.group, u.param), []).append(u)
    for (i, j), us in per_param.items():
        missing = sorted({m for u in us for m in u.missing})
        reported = us[0].reported
        report.notes.append(
            f"group {i}, param {j}: step(s) {', '.join(str(u.step + 1) for u in us)} not checked from one exact "
            f"step: they read {', '.join(missing)}, which the backend's state did not hold after the step before "
            f"(it reported {', '.join(reported) or 'nothing'}); trajectory mode checks this parameter from its "
            f"initial values")


def _ulp_error(value, ref, fmt) -> float:
    """ULP error in ``fmt``; a value stored in another dtype (torch keeps NAdam's mu_product in
    float32 whatever the parameter's dtype) is measured exactly, without rounding it to ``fmt``."""
    if value.dtype == fmt.dtype:
        return ulp_error(value, ref, fmt)
    got = exact(value)
    if isinstance(got, float):
        return math.inf
    ulp = fmt.ulp(ref)
    return float(abs(_CTX.mpf(got.numerator) / got.denominator - _CTX.mpf(ref)) / (_CTX.mpf(ulp.numerator) / ulp.denominator))


def _compare(value, elem, bnd, fmt) -> tuple:
    """(verdict, ulp error, ratio, why) of one backend value against its exact value and bound."""
    got = exact(value)
    ref = elem.value
    ref_nonfinite = isinstance(ref, float) or (isinstance(ref, mpmath.mpf) and not mpmath.isfinite(ref))
    if bnd.finite_inputs and bnd.limited:
        # e.g. √(v − ḡ²) whose exact argument is just below 0 but may round to ≥ 0 in the format
        u = _ulp_error(value, ref, fmt) if not isinstance(got, float) and not ref_nonfinite else math.inf
        return "limited", u, math.nan, "; ".join(dict.fromkeys(bnd.limited))
    if not bnd.finite_inputs or not elem.exact or ref_nonfinite:
        out = _compare_special(value, got, elem.rounded[fmt.name])
        either = [r for r in bnd.limited if r.startswith(EITHER_BRANCH)]
        if out[0] == "fail" and either:  # a branch the implementation's rounding may take the other way
            return "limited", math.inf, math.nan, "; ".join(dict.fromkeys(either))
        return out
    if bnd.limited:
        u = _ulp_error(value, ref, fmt) if not isinstance(got, float) else math.inf
        return "limited", u, math.nan, "; ".join(dict.fromkeys(bnd.limited))
    if isinstance(got, float):  # NaN or inf where the exact value is finite
        return "fail", math.inf, math.inf, "non-finite result for a finite exact value"
    err = abs(_CTX.mpf(got.numerator) / got.denominator - _CTX.mpf(ref))
    u = _ulp_error(value, ref, fmt)
    if bnd.error == 0:
        ratio = 0.0 if err == 0 else math.inf
    else:
        ratio = float(err / _CTX.mpf(bnd.error))
    return ("ok" if ratio <= 1 else "fail"), u, ratio, ""


def _compare_special(value, got, expected) -> tuple:
    """A step with non-finite inputs, or not real (0/0): compare IEEE classes.

    NaN must propagate: the exact IEEE rules give NaN only from NaN inputs,
    inf − inf or 0·inf, which arithmetic in any format reproduces.  The other
    classes can legitimately differ, since a value that is finite in exact
    arithmetic may overflow inside the format (and then meet an infinity):
    such a difference is reported as a limitation of the format.
    """
    got_nan = isinstance(got, float) and math.isnan(got)
    exp = exact(expected)
    if isinstance(exp, float) and math.isnan(exp):
        return ("special", 0.0, 0.0, "NaN propagates") if got_nan else \
            ("fail", math.inf, math.inf, "the IEEE rules give NaN here")
    same = (isinstance(got, float) and got == exp) or (not isinstance(got, float) and not isinstance(exp, float))
    if same:
        return "special", 0.0, 0.0, "IEEE class as expected"
    return "limited", math.inf, math.nan, (f"non-finite inputs: got {float(value)!r} where exact IEEE rules give "
                                           f"{float(expected)!r}; the class depends on overflow inside the format")


ENGINES = ("fast", "interval")


def check(data: Case, outputs: list, mode: str = "trajectory", engine: str = "fast",
          exact_limit: int = EXACT_LIMIT, scalars: str = "float32", aside: Optional[dict] = None,
          lost_limit: int = LOST_LIMIT) -> Report:
    """Compare backend ``outputs`` (one StepOutput per step) for ``data`` with the reference.

    ``exact_limit``: how many elements the fast engine may compare exactly for values phase 1 left
    undecided (parameters in order, lowest indices first); the rest are counted "unchecked".
    ``lost_limit``: how many more it may compare exactly only to learn whether θ's unchanged value is a lost
    update (certified within the bound, the exact value within binary64's radius of θ); the rest count as lost.
    ``scalars``: the format the implementation computes its per-step scalars in, as its backend declares
    (``backend.scalar_precision``); the tolerance model charges exactly that.
    ``aside``: (group, param) → (mask of the parameter's shape, reason): elements not compared at all (a known
    deviation of the implementation covers them; ``harness.without_known``), counted in bulk as "aside"."""
    aside = aside or {}
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    spec = spec_pkg.get(data.optimizer)
    if spec.reduces or spec.sparse_gradients:  # the fast engine is elementwise and dense: a spec that reduces is
        engine = "interval"  # checked tensor by tensor, a sparse gradient's index set element by element, exactly
    fmt = get_format(data.dtype)
    _state_shapes(spec, data, outputs)
    observed = _observed(spec, data, outputs)
    if observed is not None:  # inputs of each step, not outputs: never compared
        outputs = [replace(out, state=None if out.state is None else [
            [{k: v for k, v in entries.items() if k not in spec.observed} for entries in group]
            for group in out.state]) for out in outputs]
    report = Report(data.optimizer, data.dtype, mode, exact_left=exact_limit, lost_left=lost_limit)
    for i, (hyper, params) in enumerate(data.groups):
        all_grads = [[_as_added(spec, hyper, data.layout, data.grads[s][i][j], p) for s in range(len(data.grads))]
                     for j, p in enumerate(params)]
        lrs = None if data.lrs is None else [data.lrs[s][i] for s in range(len(data.grads))]
        if mode == "step" and lrs is not None:
            lrs = _held(lrs)  # a single step starts from the lr in force, not the group's first
        if mode == "trajectory" and engine == "fast":  # the group's tensors through the fast reference at once
            fast = fast_reference_and_bounds_many(spec, hyper, params, all_grads, fmt, lrs=lrs,
                                                  phase2_limit=report.exact_left, scalars=scalars)
        for j, p0 in enumerate(params):
            grads = all_grads[j]
            skip = aside.get((i, j))
            seen = None if observed is None else observed[i][j]
            if mode == "trajectory" and engine == "interval":
                _check_trajectory(report, spec, fmt, hyper, i, j, p0, grads, lrs, outputs, scalars, skip, seen)
            elif mode == "trajectory":
                _check_trajectory_fast(report, spec, fmt, hyper, i, j, p0, grads, lrs, outputs, fast[j], scalars,
                                       skip)
            elif engine == "interval":
                _check_steps(report, spec, fmt, hyper, i, j, p0, grads, lrs, outputs, scalars, skip, seen)
        if mode == "step" and engine == "fast":
            _check_steps_fast(report, spec, fmt, hyper, i, params, all_grads, lrs, outputs, scalars,
                              [aside.get((i, j)) for j in range(len(params))])
    _note_unknown(report)
    if report.best:  # the bulk value of the largest error ratio, compared exactly (one element, not one per tensor)
        max(report.best, key=lambda c: c[0])[1]()
        report.best.clear()
    report.findings.sort(key=lambda f: (f.group, f.param))  # stable: each parameter's steps in order, as found
    return report


def _observed(spec, data: Case, outputs: list) -> Optional[list]:
    """``[i][j]``: per step, the observed state (``State.observed``: Muon's O) the backend reported for parameter
    ``j`` of group ``i`` at that step (None at a step without a gradient); None for a spec without observed state.
    A clear error where a step with a gradient lacks one: the rule reads it, and nothing else supplies it."""
    names = spec.observed
    if not names:
        return None
    if not (spec.reduces or spec.sparse_gradients):  # the fast engine takes no observed values
        raise ValueError(f"{spec.name}: observed state is checked by the interval engine, for a spec that reduces")
    out = []
    for i, (_, params) in enumerate(data.groups):
        row = []
        for j in range(len(params)):
            per_step = []
            for s, step_out in enumerate(outputs):
                if data.grads[s][i][j] is None:
                    per_step.append(None)
                    continue
                entries = {} if step_out.state is None else step_out.state[i][j]
                missing = [n for n in names if n not in entries]
                if missing:
                    raise ValueError(
                        f"{data.optimizer}: step {s + 1}, group {i}, param {j}: the backend reported no "
                        f"{', '.join(missing)}, a value of the step the spec reads (State.observed) and that only "
                        f"the implementation knows: a backend must report it to be checked")
                per_step.append({n: np.asarray(entries[n]) for n in names})
            row.append(per_step)
        out.append(row)
    return out


def _state_shapes(spec, data: Case, outputs: list) -> None:
    """A clear error for a reported state value whose shape is neither 0-d, nor the parameter's, nor the dialect's
    per-row or per-column shape (``spec.core.State.reduced_axis``).  A per-row or per-column value is compared with
    the reference's at index 0 of its reduced axis (the spec keeps it per element, constant along that axis)."""
    states = {st.name: st for st in spec.state if st.name != "step"}
    for s, out in enumerate(outputs):
        for i, (group, case_group) in enumerate(zip(out.state or (), data.groups)):
            for j, (entries, param) in enumerate(zip(group, case_group.params)):
                shape = np.shape(param)
                for name, value in (entries or {}).items():
                    if name in states:
                        states[name].check_shape(np.shape(value), shape,
                                                 f"{data.optimizer}: step {s + 1}, group {i}, param {j}: the backend's ")


def _undecided(report, s_range, i, j, out_steps, names, why: Unstable) -> None:
    """A tensor whose exact values the reference cannot settle (``reference.step.Unstable``: an exact tie that no
    interval decides, as LAMB's ‖θ‖ > 0 after θ − |θ|·u/|u| = 0 can be): its values at these steps are
    "unchecked", named in a note, never passed."""
    for s, out in zip(s_range, out_steps):
        for name, arr in _quantities([], s, i, j, out, names - {"step"}, None):
            report.bulk.append(Bulk(s, i, j, name, int(np.size(arr)), 0, math.nan, "unchecked",
                                    "the exact reference cannot settle a tie"))
    report.notes.append(f"group {i}, param {j}, steps {s_range[0] + 1}–{s_range[-1] + 1}: not checked, the exact "
                        f"reference cannot settle a tie ({str(why).split(': ')[-1][:200]})")


def _as_added(spec, hyper: dict, layout: str, g, param):
    """``g`` as the dialect adds it to ``param`` in ``layout``: a spec that adds duplicate indices in turn (torch's
    SGD without momentum, ``OptimizerSpec.adds_duplicates_in_turn``) does so on a contiguous parameter only; on a
    non-contiguous one ``add_out_dense_sparse_cpu``'s slow path coalesces them first (``reference.sparse.coalesce``)."""
    if (spec.adds_duplicates_in_turn and duplicates(g) and spec.takes_duplicates(hyper)
            and not contiguous(layout, np.shape(param))):
        return coalesce(g)
    return g


def _check_trajectory(report, spec, fmt, hyper, i, j, p0, grads, lrs, outputs, scalars, skip=None, observed=None):
    try:
        ref = trajectory(spec, hyper, p0, grads, lrs=lrs, formats=(fmt.name,), observed=observed)
    except Unstable as why:
        if not spec.reduces:
            raise  # an elementwise spec settles every tie (reference.exact): this is a bug of the reference
        return _undecided(report, list(range(len(outputs))), i, j, outputs, {st.name for st in spec.state},
                          why)
    bnd = trajectory_bounds(spec, hyper, p0, grads, fmt, lrs=lrs, scalars=scalars, observed=observed)
    for s, out in enumerate(outputs):
        prev = p0 if s == 0 else outputs[s - 1].params[i][j]
        prev_state = None if s == 0 or outputs[s - 1].state is None else outputs[s - 1].state[i][j]
        _compare_step(report, s, i, j, ref[s], bnd[s], out, fmt, prev, skip, prev_state)


def _check_steps_fast(report, spec, fmt, hyper, i, params, all_grads, lrs, outputs, scalars, skips):
    """``_check_steps`` for a whole group with the fast engine: per step, one ``fast_reference_and_bounds_many``."""
    names = {st.name for st in spec.state}
    counts = [0] * len(params)
    for s, out in enumerate(outputs):
        prevs = [p0 if s == 0 else outputs[s - 1].params[i][j] for j, p0 in enumerate(params)]
        states = [{} if s == 0 else None if outputs[s - 1].state is None else outputs[s - 1].state[i][j]
                  for j in range(len(params))]
        givens = [{k: np.asarray(v) for k, v in (st or {}).items() if k in names and k != "step"} for st in states]
        lr = None if lrs is None else [lrs[s]]
        keep = []
        for j in range(len(params)):
            missing = _unknown_state(spec, hyper, lr, states[j], counts[j], all_grads[j][s])
            if missing:
                _not_checked(report, s, i, j, out, names, missing, states[j])
            else:
                keep.append(j)
        fast = fast_reference_and_bounds_many(spec, hyper, [prevs[j] for j in keep],
                                              [[all_grads[j][s]] for j in keep], fmt,
                                              states=[givens[j] for j in keep], steps=[counts[j] for j in keep],
                                              lrs=lr, phase2_limit=report.exact_left, scalars=scalars)
        for j, (snaps, bnds) in zip(keep, fast):
            def exact_rows(idx, ref=True, bound=True, prev_params=prevs[j], given=givens[j], count=counts[j],
                           g=all_grads[j][s], lr=lr):
                flat = [_flat(a, idx) for a in (prev_params, g)]
                st = {k: _flat(np.broadcast_to(v, np.shape(prev_params)), idx) for k, v in given.items()}
                return ([trajectory(spec, hyper, flat[0], [flat[1]], state=st, step=count, lrs=lr,
                                    formats=(fmt.name,))[0]] if ref else None,
                        [trajectory_bounds(spec, hyper, flat[0], [flat[1]], fmt, state=st, step=count, lrs=lr,
                                           scalars=scalars)[0]] if bound else None)

            _compare_fast(report, [s], i, j, snaps, bnds, [out], fmt, [prevs[j]], exact_rows, [givens[j] or None],
                          skips[j])
        counts = [c + (g[s] is not None) for c, g in zip(counts, all_grads)]


def _check_steps(report, spec, fmt, hyper, i, j, p0, grads, lrs, outputs, scalars, skip=None, observed=None):
    count = 0
    names = {st.name for st in spec.state}
    for s, out in enumerate(outputs):
        prev_params = p0 if s == 0 else outputs[s - 1].params[i][j]
        state = {} if s == 0 else None if outputs[s - 1].state is None else outputs[s - 1].state[i][j]
        lr = None if lrs is None else [lrs[s]]
        missing = _unknown_state(spec, hyper, lr, state, count, grads[s])
        if missing:
            _not_checked(report, s, i, j, out, names, missing, state)
            count += 1
            continue
        given = {k: np.asarray(v) for k, v in (state or {}).items() if k in names and k != "step"}
        seen = None if observed is None else [observed[s]]  # this step's own observed values
        try:
            ref = trajectory(spec, hyper, prev_params, [grads[s]], state=given, step=count, lrs=lr,
                             formats=(fmt.name,), observed=seen)[0]
        except Unstable as why:
            if not spec.reduces:
                raise  # as in _check_trajectory
            _undecided(report, [s], i, j, [out], names, why)
            count += grads[s] is not None
            continue
        bnd = trajectory_bounds(spec, hyper, prev_params, [grads[s]], fmt, state=given, step=count, lrs=lr,
                                scalars=scalars, observed=seen)[0]
        _compare_step(report, s, i, j, ref, bnd, out, fmt, prev_params, skip, state or None)
        if grads[s] is not None:
            count += 1


def _add_resolution(report, name, ref_arr, bnd_arr, before, skip) -> None:
    """``Report.add_resolution`` for the interval engine's element results: the elements with a finite exact
    value and a finite bound of finite inputs, as the fast engine counts them (format-limited, non-finite and
    set-aside values are left out)."""
    bounds, values, prevs = [], [], []
    for idx in np.ndindex(*before.shape):  # the compared shape: a keepdim state's (State.reduced_axis) is smaller
        elem, b = ref_arr[idx], bnd_arr[idx]
        if (skip is not None and skip[0][idx]) or not (elem.exact and b.finite_inputs) or b.limited:
            continue
        value, error = float(elem.value), float(b.error)
        if math.isfinite(value) and math.isfinite(error):
            bounds.append(error)
            values.append(value)
            prevs.append(before[idx])
    if bounds:
        report.add_resolution(np.array(bounds), np.array(values), np.array(prevs), name)


def _quantities(findings, s, i, j, out, names, t) -> list:
    """[(name, array)] of step ``s``'s outputs to compare; a wrong step counter becomes a Finding in ``findings``."""
    got = np.asarray(out.params[i][j])
    quantities = [("theta", got)]
    if out.state is not None:
        for name, arr in out.state[i][j].items():
            if name in names and np.ndim(arr) == got.ndim:  # the param's shape or the dialect's (_state_shapes)
                quantities.append((name, np.asarray(arr)))
            elif name in names and np.ndim(arr) == 0:
                quantities.append((name, np.broadcast_to(np.asarray(arr), got.shape)))
            elif name == "step" and float(arr) != t:
                findings.append(Finding(s, i, j, (), "step", np.float64(arr), t, 0, math.inf, math.inf,
                                        "fail", f"step counter is {float(arr)}, expected {t}"))
    return quantities


def _compare_step(report, s, i, j, ref, bnd, out, fmt, prev, skip=None, prev_state=None):
    """Compare step ``s``'s outputs of parameter (``i``, ``j``) element by element with the exact ``ref`` and the
    bounds ``bnd``; ``prev``: the implementation's θ before the step, ``prev_state``: its state before the step
    (name → array, None where not exposed), for the resolution figures (``Report.add_resolution``)."""
    got = np.asarray(out.params[i][j])
    quantities = _quantities(report.findings, s, i, j, out, ref.state, ref.t)
    for name, arr in quantities:
        ref_arr = ref.theta if name == "theta" else ref.state[name]
        bnd_arr = bnd[name]
        if skip is not None and skip[0].any():
            report.bulk.append(Bulk(s, i, j, name, int(skip[0].sum()), 0, math.nan, "aside", skip[1]))
        before = prev if name == "theta" else None if prev_state is None else prev_state.get(name)
        if before is not None:
            _add_resolution(report, name, ref_arr, bnd_arr, np.broadcast_to(np.asarray(before), arr.shape), skip)
        for idx in np.ndindex(*arr.shape):
            if skip is not None and skip[0][idx]:
                continue
            value = arr[idx]
            if not isinstance(value, np.generic):
                value = np.float64(value)
            verdict, u, ratio, why = _compare(value, ref_arr[idx], bnd_arr[idx], fmt)
            lost = False
            if name == "theta" and verdict == "ok":
                lost = bool(got[idx] == np.asarray(prev)[idx]) and ref_arr[idx].value != exact(np.asarray(prev)[idx])
            report.findings.append(Finding(s, i, j, idx, name, value, ref_arr[idx].value, bnd_arr[idx].error,
                                           u, ratio, verdict, why, lost))




# ------------------------------------------------------------------------------------------- fast engine

_MARGIN = 1 - 2.0 ** -20  # bulk "ok" only this far inside the fast bound, which may exceed reference.bound's


def _flat(a, idx):
    return None if a is None else np.asarray(a).reshape(-1)[idx]


def _check_trajectory_fast(report, spec, fmt, hyper, i, j, p0, grads, lrs, outputs, fast, scalars, skip=None):
    snaps, bnds = fast  # this parameter's fast_reference_and_bounds

    def exact_rows(idx, ref=True, bound=True):
        sub = [_flat(g, idx) for g in grads]
        return (trajectory(spec, hyper, _flat(p0, idx), sub, lrs=lrs, formats=(fmt.name,)) if ref else None,
                trajectory_bounds(spec, hyper, _flat(p0, idx), sub, fmt, lrs=lrs, scalars=scalars) if bound else None)

    prevs = [p0] + [out.params[i][j] for out in outputs[:-1]]
    prev_states = [None] + [None if out.state is None else out.state[i][j] for out in outputs[:-1]]
    _compare_fast(report, list(range(len(outputs))), i, j, snaps, bnds, outputs, fmt, prevs, exact_rows, prev_states,
                  skip)


def _ulp_estimate(dist, x, fmt):
    """dist / ulp(x) in ``fmt``, in float64: ulp = 2^(max(⌊log2|x|⌋, emin) − p + 1)."""
    _, e = np.frexp(x)
    return dist / np.ldexp(1.0, np.maximum(e - 1, fmt.emin) - fmt.precision + 1)


def _compare_fast(report, steps, i, j, snaps, bnds, outputs, fmt, prevs, exact_rows, prev_states, skip=None):
    """Compare outputs at ``steps`` (report step numbers, one per snapshot) with the fast reference;
    ``exact_rows(flat indices, ref=True, bound=True)`` gives (reference rows, bound rows) of those elements alone,
    per snapshot (None for a side not asked for);
    ``prev_states``: per snapshot, the implementation's state before the step (name → array), or None where
    it is not known (the first step), for the resolution of the state variables; ``skip``: (mask, reason) of
    elements set aside, or None."""
    shape = np.shape(outputs[0].params[i][j])
    aside = np.zeros(shape, dtype=bool) if skip is None else np.asarray(skip[0], dtype=bool).reshape(shape)
    per_step, exact_idx, failing, first_fail, lost_open = [], set(), set(), {}, set()
    best = (-1.0, None)  # the bulk value with the largest ratio: a candidate for Report.worst (Report.best)
    for k, (s, snap, bnd, out) in enumerate(zip(steps, snaps, bnds, outputs)):
        prev = np.asarray(prevs[k])
        rows, counter = [], []
        for name, arr in _quantities(counter, s, i, j, out, snap.value, snap.t):
            got = np.asarray(arr)
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                verdicts = fast_verdicts(got, snap, bnd, name, fmt)
                plain = verdicts == 1
                g64 = got.astype(np.float64)
                dist = np.abs(g64 - snap.value[name])
                bound = bnd.error[name]
                plain &= dist + _up(snap.radius[name] + U * dist) <= bound * _MARGIN
                # a zero bound marks a value obtained exactly (its float64 value exact): ok when got is it
                base = ~snap.phase2 & ~bnd.phase2 & np.isfinite(g64) & snap.exact[name]
                base &= ~bnd.limited.get(name, False)  # limited: any value, said in bulk below
                plain |= base & (bound == 0) & (dist == 0)
                plain &= ~aside
                lost = np.zeros(shape, dtype=bool)
                if name == "theta":
                    same = plain & (got == prev)
                    # Lost (θ unchanged, exact value not θ) is decided by the enclosure, or exactly for a value
                    # obtained exactly (zero bound: its float64 value is exact).  The undecided (an update
                    # below binary64's resolution, or an exact value that is θ) count as lost but for the
                    # first LOST_LIMIT of the case, compared exactly below.
                    gap = np.abs(snap.value[name] - prev.astype(np.float64))
                    exact_value = bound == 0
                    differs = (gap > snap.radius[name]) | (exact_value & (gap != 0))
                    undecided = same & ~differs & ~(exact_value & (gap == 0))
                    lost = same & (differs | undecided)
                    lost_open.update(np.flatnonzero(undecided & ~aside).tolist())
                ratio = np.where(plain, np.where(bound > 0, dist / np.where(bound > 0, bound, 1), 0.0), -1.0)
            limited = bnd.limited.get(name, np.zeros(shape, dtype=bool)) & ~plain & ~aside
            fails = (verdicts == -1) & ~plain & ~limited & ~aside
            failing_here = np.flatnonzero(fails)
            if failing_here.size:
                first_fail[s] = min(first_fail.get(s, int(failing_here[0])), int(failing_here[0]))
                failing.update(failing_here[:DESCRIBED_FAILURES].tolist())
            exact_idx.update(np.flatnonzero(~plain & ~limited & ~fails & ~aside).tolist())
            if plain.any():
                f = int(np.argmax(ratio))
                if ratio.reshape(-1)[f] > best[0]:
                    best = (float(ratio.reshape(-1)[f]), f)
            if skip is not None:
                bound = np.where(aside, np.inf, bound)  # no resolution either: an infinite bound is left out
            if name == "theta":
                report.add_resolution(bound, snap.value[name], prev)
            elif prev_states[k] is not None and name in prev_states[k]:
                report.add_resolution(bound, snap.value[name], np.broadcast_to(prev_states[k][name], shape), name)
            rows.append((name, got, plain, lost, dist, snap.value[name], limited, bnd.why.get(name, ""), fails))
        per_step.append((rows, counter))
    undecided = sorted(exact_idx)
    limit = report.exact_left
    if len(undecided) > limit:
        report.notes.append(f"step(s) {steps[0] + 1}–{steps[-1] + 1}, group {i}, param {j}: {len(undecided) - limit} of "
                            f"its {len(undecided)} elements that phase 1 of the fast reference could not decide were "
                            f"not compared exactly (the case's limit is {EXACT_LIMIT}): their values count as unchecked")
    report.exact_left -= min(limit, len(undecided))
    exact_idx = set(undecided[:limit]) | set(sorted(failing)[:DESCRIBED_FAILURES]) | set(first_fail.values())
    lost_exact = sorted(lost_open - exact_idx)[:report.lost_left]
    report.lost_left -= len(lost_exact)
    order = sorted(exact_idx | set(lost_exact))
    refs, bnd_rows = _exact_rows_reusing(order, snaps, bnds, exact_rows) if order else (None, None)
    pos = {f: n for n, f in enumerate(order)}
    b = best[1] if best[1] is not None and best[1] not in pos else None
    best_bulk = []  # (Bulk, lost) of each value of element b counted in bulk
    for k, (s, (rows, counter)) in enumerate(zip(steps, per_step)):
        report.findings += counter
        prev = np.asarray(prevs[k]).reshape(-1)
        for name, got, plain, lost, dist, x, limited, why, fails in rows:
            plain_flat = plain.reshape(-1).copy()
            plain_flat[order] = False  # compared exactly below
            lost_flat = lost.reshape(-1)
            n_bulk = int(plain_flat.sum())
            limited_flat = limited.reshape(-1).copy()
            limited_flat[order] = False
            fails_flat = fails.reshape(-1).copy()
            fails_flat[order] = False
            aside_flat = aside.reshape(-1)
            rest = ~(plain_flat | limited_flat | fails_flat | aside_flat)
            rest[order] = False
            entries = []
            if aside_flat.any():
                entries.append((aside_flat, Bulk(s, i, j, name, int(aside_flat.sum()), 0, math.nan, "aside",
                                                 skip[1])))
            if n_bulk:
                u = _ulp_estimate(dist.reshape(-1)[plain_flat], x.reshape(-1)[plain_flat], fmt)
                entries.append((plain_flat, Bulk(s, i, j, name, n_bulk, int(lost_flat[plain_flat].sum()),
                                                 float(u.max()))))
            if limited_flat.any():
                entries.append((limited_flat, Bulk(s, i, j, name, int(limited_flat.sum()), 0, math.nan, "limited",
                                                   why)))
            if fails_flat.any():
                entries.append((fails_flat, Bulk(s, i, j, name, int(fails_flat.sum()), 0, math.nan, "fail",
                                                 "outside the bound (decided by the fast reference, not described)")))
            if rest.any():
                entries.append((rest, Bulk(s, i, j, name, int(rest.sum()), 0, math.nan, "unchecked",
                                           "not decided by phase 1, past the exact comparison's limit")))
            for mask, entry in entries:
                report.bulk.append(entry)
                if b is not None and mask[b]:
                    best_bulk.append((entry, bool(lost_flat[b]) and entry.verdict == "ok"))
            for f in order:
                report.findings.append(_exact_finding(s, i, j, name, got, prev, f, refs[k], bnd_rows[k][name],
                                                      pos[f], shape, fmt))
    if b is not None:
        def compare_best():
            """Element b exactly (the bulk value of the largest error ratio), its values taken out of the bulk."""
            refs1, bnds1 = exact_rows(np.array([b], dtype=np.intp))
            for entry, was_lost in best_bulk:
                entry.count -= 1
                entry.lost -= was_lost
            report.bulk = [x for x in report.bulk if x.count]
            for k, (s, (rows, _)) in enumerate(zip(steps, per_step)):
                prev = np.asarray(prevs[k]).reshape(-1)
                for name, got, *_ in rows:
                    report.findings.append(_exact_finding(s, i, j, name, got, prev, b, refs1[k], bnds1[k][name], 0,
                                                          shape, fmt))
        report.best.append((best[0], compare_best))


def _exact_rows_reusing(order, snaps, bnds, exact_rows):
    """``exact_rows(order)`` (per snapshot, reference rows with ``theta``/``state`` and bound rows by name, element
    p of each for flat element ``order[p]``), taking what the fast reference already ran through ``reference.step``
    or ``reference.bound`` in its phase 2 (``elements`` of every step's snapshot, or of every step's bounds, for
    every output) from there: the same functions on the same inputs, which the exact comparison would run a
    second time.  The reference and the bound of an element are taken or run independently."""
    names = list(snaps[0].value)
    need_ref = [f for f in order if not all(f in sn.elements.get(name, ()) for sn in snaps for name in names)]
    need_bnd = [f for f in order if not all(f in b.elements.get(name, ()) for b in bnds for name in names)]
    if need_ref == need_bnd == order:
        return exact_rows(np.array(order, dtype=np.intp))
    refs = exact_rows(np.array(need_ref, dtype=np.intp), bound=False)[0] if need_ref else None
    bnd_rows = exact_rows(np.array(need_bnd, dtype=np.intp), ref=False)[1] if need_bnd else None
    at_ref = {f: p for p, f in enumerate(need_ref)}
    at_bnd = {f: p for p, f in enumerate(need_bnd)}
    out_refs, out_bnds = [], []
    for k, (sn, b) in enumerate(zip(snaps, bnds)):
        row, brow = {}, {}
        for name in names:
            els, ebs = np.empty(len(order), dtype=object), np.empty(len(order), dtype=object)
            for p, f in enumerate(order):
                if f in at_ref:
                    els[p] = (refs[k].theta if name == "theta" else refs[k].state[name]).reshape(-1)[at_ref[f]]
                else:
                    els[p] = sn.elements[name][f]
                ebs[p] = bnd_rows[k][name].reshape(-1)[at_bnd[f]] if f in at_bnd else b.elements[name][f]
            row[name], brow[name] = els, ebs
        out_refs.append(Snapshot(t=sn.t, theta=row.pop("theta"), state=row, stepped=sn.stepped))
        out_bnds.append(brow)
    return out_refs, out_bnds


def _exact_finding(s, i, j, name, got, prev, f, ref_row, bnd_arr, p, shape, fmt) -> Finding:
    """The ``Finding`` of flat element ``f`` of output ``name`` at step ``s``: ``ref_row``'s and ``bnd_arr``'s
    element ``p`` are its exact value and bound."""
    gflat = got.reshape(-1)
    value = gflat[f]
    if not isinstance(value, np.generic):
        value = np.float64(value)
    elem = (ref_row.theta if name == "theta" else ref_row.state[name]).reshape(-1)[p]
    eb = bnd_arr.reshape(-1)[p]
    verdict, u, ratio, why = _compare(value, elem, eb, fmt)
    is_lost = False
    if name == "theta" and verdict == "ok":
        is_lost = bool(gflat[f] == prev[f]) and elem.value != exact(prev[f])
    idx = tuple(int(q) for q in np.unravel_index(f, shape)) if shape else ()
    return Finding(s, i, j, idx, name, value, elem.value, eb.error, u, ratio, verdict, why, is_lost)
