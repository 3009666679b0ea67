"""What each conformance test does with a drawn case: run the backend, check, explain failures."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import event, note, reject, target

from .backend import BackendError, Case, Group, check_output, for_backend, scalar_precision
from .check import check
from .known_deviations import affecting, affecting_all, find, of_xfail_reason, target_of
from .replay import reproduction
from .strategies import LARGE


def case_axes(backend, optimizer: str, path: str, dtype: str) -> dict:
    """axis -> None (offered) or the reason refused, for the case axes (``backend.CASE_AXES``) ``backend`` knows;
    {} for a backend without ``case_axes``."""
    how = getattr(backend, "case_axes", None)
    return dict(how(optimizer, path, dtype)) if callable(how) else {}


def offered_axes(backend, optimizer: str, path: str, dtype: str) -> tuple:
    """The case axes the strategies draw for this optimizer, path and dtype (``strategies.cases(axes=)``)."""
    return tuple(a for a, why in case_axes(backend, optimizer, path, dtype).items() if why is None)


def run_backend(backend, data, path):
    """Run the backend on ``data``; a raise or a malformed answer becomes a clear failure."""
    case = for_backend(data, path)
    try:
        outputs = backend.run(case)
        check_output(case, outputs)
    except BackendError as e:
        raise AssertionError(f"backend error: {e}") from None
    return outputs


def known_deviation_for(config, test: str, spec: str, path, dtype, case, whole: bool = False):
    """The known deviation that sets ``case`` aside in ``test`` (``known_deviations.affecting``), on the run's
    backend (a schedule's path and dtype are "-"); ``whole``: whole-parameter entries too, for a test that draws
    its (optimizer, path, dtype) itself."""
    target = _target(config, spec, path)
    return (whole and find(target, spec, path, dtype, test)) or affecting(target, spec, path, dtype, case, test)


def _target(config, spec: str, path):
    """What the run checks for ``spec``'s ``path`` (a schedule's path is "-"): the key of its known deviations."""
    return target_of(config._conformance_backend, config.getoption("--backend"), spec, None if path == "-" else path)


def set_aside_known(request, data, path):
    """Set aside a case that a known, input-specific deviation of this test covers (a Hypothesis event names it)."""
    known = known_deviation_for(request.config, request.node.originalname, data.optimizer, path, data.dtype, data)
    if known:
        _set_aside(request, known)


def _set_aside(request, known):
    event(f"set aside, known deviation {known.id}")
    aside = request.node.__dict__.setdefault("_conformance_set_aside", {})
    aside[known.id] = aside.get(known.id, 0) + 1
    reject()


def _tensors(data, keep) -> Case:
    """``data`` with only the tensors ``keep`` ((group, param) pairs, in order), groups left empty dropped."""
    rows = {}
    for i, j in keep:
        rows.setdefault(i, []).append(j)
    groups = [Group(data.groups[i].hyper, [data.groups[i].params[j] for j in js]) for i, js in rows.items()]
    grads = [[[step[i][j] for j in js] for i, js in rows.items()] for step in data.grads]
    lrs = None if data.lrs is None else [[row[i] for i in rows] for row in data.lrs]
    return replace(data, groups=groups, grads=grads, lrs=lrs)


def without_known(request, data, path):
    """(``data``, aside): ``data``, or, where an input-specific known deviation covers it, ``data`` without the
    tensors such a deviation covers, each judged as a case of its own (the optimizers here step each tensor
    independently of the others, as ``test_several_tensors_at_once_equal_each_alone`` checks): a Hypothesis
    event and note say which.  A covered tensor whose every covering entry says which of its elements it
    concerns (``KnownDeviation.elements``) stays, with those elements in ``aside`` ((group, param) of the
    returned case → (mask, reason)), which ``check`` leaves out.  Set aside (``set_aside_known``) when no
    tensor is left, or what is left is still covered by an entry that names no elements.

    Why not set the whole case aside: a realistic case has up to a dozen tensors per group, so one element
    that a deviation concerns (a square that overflows float16 in foreach RAdam) would otherwise discard
    the whole draw, and Hypothesis would draw hundreds of cases to find a few it may check."""
    def covering(case):
        return known_deviations_for(request.config, request.node.originalname, data.optimizer, path, data.dtype,
                                    case)

    known = covering(data)
    if not known:
        return data, {}
    pairs = [(i, j) for i, (_, params) in enumerate(data.groups) for j in range(len(params))]
    keep, left_out, masks = [], [], {}
    for ij in pairs:
        one = _tensors(data, [ij])
        entries = covering(one)
        mask = _elements(entries, one)
        if mask is None or mask.all():
            (left_out if entries else keep).append(ij)
        else:
            keep.append(ij)
            if mask.any():
                masks[ij] = (mask, "known deviation " + ", ".join(e.id for e in entries))
    narrowed = _tensors(data, keep) if keep else None
    if narrowed is None or any(e.elements is None for e in covering(narrowed)):
        _set_aside(request, known[0])
    # _tensors renumbers: groups in order of their first kept tensor, tensors in order within a group
    rows = sorted({i for i, _ in keep})
    aside = {(rows.index(i), [jj for ii, jj in keep if ii == i].index(j)): masks[(i, j)] for i, j in masks}
    ids = sorted({e.id for e in known})
    if left_out:
        event(f"tensors left out, known deviation {', '.join(ids)}")
    if masks:
        event(f"elements left out, known deviation {', '.join(ids)}")
    note(f"left out (group, param) {left_out} and {sum(int(m.sum()) for m, _ in masks.values())} elements of "
         f"{sorted(masks)}: known deviation {', '.join(ids)} covers them; checked the rest of {len(keep)} tensors")
    return narrowed, aside


def known_deviations_for(config, test: str, spec: str, path, dtype, case) -> list:
    """Every input-specific known deviation that covers ``case`` in ``test`` on the run's backend."""
    return affecting_all(_target(config, spec, path), spec, path, dtype, case, test)


def _elements(entries, one) -> "np.ndarray | None":
    """The union of the elements the ``entries`` that cover the one-tensor case ``one`` concern (``None`` when
    one of them names none: the whole tensor), or an all-False mask when none covers it."""
    mask = np.zeros(np.shape(one.groups[0].params[0]), dtype=bool)
    for e in entries:
        if e.elements is None:
            return None
        mask |= np.asarray(e.elements(one), dtype=bool)
    return mask


def run_and_check(request, backend, data, path, mode):
    """Run, compare with the reference, feed Hypothesis, and fail with a reproduction."""
    data, aside = without_known(request, data, path)
    if any(p.size > LARGE for _, params in data.groups for p in params):
        event("checked a tensor past 65,536 elements")
    outputs = run_backend(backend, data, path)
    report = check(data, outputs, mode, scalars=scalar_precision(backend, data.optimizer, path), aside=aside)
    ratio = report.max_ratio()
    target(min(math.log2(1 + ratio), 1e6) if math.isfinite(ratio) else 1e6, label="log2(1 + error/bound)")
    counts = report.counts()
    for verdict in counts:
        event(f"verdict {verdict}")
    if report.lost_updates():
        event("an update lost to rounding (θ + Δ = θ in the dtype)")
    if "limited" in counts:
        event("dtype-limited: " + report.limited_reason().split(":")[0])
    if report.state_unknown:  # check.StateUnknown: single steps that read state the backend did not report
        missing = sorted({m for u in report.state_unknown for m in u.missing})
        event(f"single steps not checked: the backend reported no {', '.join(missing)}")
    collector = getattr(request.config, "_drift_collector", None)
    if collector is not None:
        collector.add(request.node.nodeid, request.config.getoption("--backend"), path, data, report)
    if not report.ok:
        note(report.summary())
        repro = reproduction(data, request.config.getoption("--backend"), path, mode,
                             getattr(request.config, "_conformance_overrides", None),
                             **getattr(request.config, "_conformance_mapping", {}))
        expected = expected_by_known_deviation(request)
        if expected:
            raise KnownDeviationMet(f"{expected}\n{report.summary()}\n\nReproduce with:\n{repro}")
        raise AssertionError(f"{report.summary()}\n\nReproduce with:\n{repro}")
    return report


def expected_by_known_deviation(request) -> str:
    """The reason of the mark a whole-test known deviation put on this test (``plugin``), or ""."""
    mark = request.node.get_closest_marker("xfail")
    reason = str(mark.kwargs.get("reason", "")) if mark is not None else ""
    return reason if of_xfail_reason(reason) else ""


class KnownDeviationMet(BaseException):
    """A failure of a test that a whole-test known deviation marks xfail.  Not an ``Exception``, so that
    Hypothesis stops at once instead of shrinking an expected failure (shrinking a large case costs minutes);
    ``plugin.pytest_pyfunc_call`` reports it as the xfail it is."""
