"""The drift report: how far a backend's results sit from the exact ones, per optimizer × path × dtype.

The conformance harness hands every checked case to ``DriftCollector.add``
(``conformance.harness.run_and_check``).  Per (backend, optimizer, path,
dtype) the collector keeps:

* the number of cases (Hypothesis examples, shrinking and replays included),
  by mode (``trajectory``: ``test_trajectory``; ``step``: ``test_single_steps``);
* per case, two numbers: the largest ULP error of the parameter (findings of
  quantity ``theta`` with verdict ok or fail) at step 1 and at the case's last
  step.  They give exact max / p99 / median statistics (nearest-rank
  percentiles: always a value some case had) and travel in the JSON, so
  reports merge without loss;
* how many findings were dtype-limited, how many parameter updates were lost
  to rounding (θ + Δ = θ in the dtype), the largest error/bound ratio;
* the test outcomes (passed, failed, xfailed, ...), which give the verdict:
  ``FAIL``, ``xfail-known`` (a failure covered by ``known_deviations``) or
  ``pass``;
* the worst input: the case with the highest error/bound ratio, as the
  ``conformance.replay`` call that reproduces it.

``to_json`` / ``merge`` move the data between pytest-xdist workers and the
controller (``conformance/plugin.py``) and combine saved reports;
``table`` renders the terminal summary.

Learning-rate schedules (``conformance/test_schedules.py``) have rows of their
own, per (backend, schedule, quantity) with quantity ``lr`` or ``momentum``
(``DriftCollector.add_schedule``): per case the largest ULP error at the first
step (n = 0) and at the case's last step, its horizon, the largest
error/bound ratio (the bound of the form torch evaluates) and, for the
recursive (chainable) schedulers, the largest error over the bound a
closed-form evaluation would meet: the recursion's drift beyond what the closed
formula allows (above 1 is drift, not failure).

The ULP statistics count trajectory cases only ("the parameter at the last
step of a trajectory" is the error accumulated over the whole trajectory);
single-step cases, whose last step is one step from the backend's own state,
are kept apart under ``ulp_by_mode["step"]``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections import Counter
from typing import Optional

from spec.schedules import SCHEDULES

from .known_deviations import find, target_of

SCHEMA = "optimizer-conformance/drift-report"
VERSION = 1

FAIL, XFAIL, PASS = "FAIL", "xfail-known", "pass"
_MODES = ("trajectory", "step")


# --------------------------------------------------------------------------- numbers in JSON

def _enc(x) -> object:
    """A float for JSON: finite floats as they are, inf/nan as the strings "inf", "-inf", "nan"."""
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _dec(x) -> Optional[float]:
    if x is None:
        return None
    return float(x)  # float("inf"), float("nan") parse the strings _enc writes


def percentile(values, p: float) -> Optional[float]:
    """Nearest-rank percentile (numpy's ``inverted_cdf``): the smallest value with ≥ p% of values ≤ it."""
    xs = sorted(v for v in values if v is not None and not math.isnan(v))
    if not xs:
        return None
    rank = max(1, math.ceil(p / 100 * len(xs)))
    return xs[min(rank, len(xs)) - 1]


def _stats(values) -> dict:
    xs = [v for v in values if v is not None]
    return {"n": len(xs), "max": _enc(max(xs)) if xs else None,
            "p99": _enc(percentile(xs, 99)), "median": _enc(percentile(xs, 50))}


# --------------------------------------------------------------------------- one entry

class _Entry:
    """Everything kept for one (backend, optimizer, path, dtype)."""

    def __init__(self, backend: str, optimizer: str, path: str, dtype: str):
        self.backend, self.optimizer, self.path, self.dtype = backend, optimizer, path, dtype
        self.cases = {m: 0 for m in _MODES}
        self.samples = {m: {"step1": [], "last": []} for m in _MODES}  # per case: max ulp, or None
        self.findings = 0
        self.theta_findings = 0
        self.limited = 0
        self.unchecked = 0  # values the fast reference left undecided past the exact comparison's limit
        # state name → single steps (of one parameter) not checked because they read it and the backend did not
        # report it (check.StateUnknown); their values are in ``unchecked`` too
        self.state_unexposed = Counter()
        self.resolution = Counter()  # ⌊log2(bound / |Δθ|)⌋ → count over the cases (check.Report.add_resolution)
        self.state_resolution = {}  # state name → Counter, the same for each state variable
        self.lost_update = 0
        self.failed_values = 0
        self.failed_cases = 0
        self.max_ratio = 0.0
        self.tests = {}  # nodeid -> {"cases": n, "outcome": str | None, "worker": str | None}
        self.worst = None  # {"ratio", "ulp", "nodeid", "mode", "finding", "reproduction"}
        self.flags = None
        self.known_deviation = None

    @property
    def key(self) -> tuple:
        return (self.backend, self.optimizer, self.path, self.dtype)

    def test(self, nodeid: str, worker: Optional[str]) -> dict:
        return self.tests.setdefault(nodeid, {"cases": 0, "outcome": None, "worker": worker})

    def verdict(self) -> str:
        outcomes = [t["outcome"] for t in self.tests.values()]
        if "failed" in outcomes:
            return FAIL
        if "xfailed" in outcomes:
            return XFAIL
        if self.failed_cases and not any(o in ("passed", "xpassed") for o in outcomes):
            # Cases failed but no test outcome was recorded (add() used outside pytest).
            return XFAIL if self.known_deviation else FAIL
        return PASS

    def offer_worst(self, candidate: dict) -> None:
        if self.worst is None or _worse(candidate, self.worst):
            self.worst = candidate

    # -- JSON ----------------------------------------------------------------
    def to_dict(self) -> dict:
        total = sum(self.cases.values())
        outcomes = [t["outcome"] for t in self.tests.values()]
        return {
            "backend": self.backend,
            "optimizer": self.optimizer,
            "path": self.path,
            "dtype": self.dtype,
            "flags": self.flags,
            "known_deviation": self.known_deviation,
            "verdict": self.verdict(),
            "stale_known_deviation": "xpassed" in outcomes,
            "cases": total,
            "cases_by_mode": dict(self.cases),
            "tests": {k: dict(v) for k, v in sorted(self.tests.items())},
            "ulp": {"step1": _stats(self.samples["trajectory"]["step1"]),
                    "last": _stats(self.samples["trajectory"]["last"])},
            "ulp_by_mode": {m: {"step1": _stats(self.samples[m]["step1"]), "last": _stats(self.samples[m]["last"])}
                            for m in _MODES},
            "findings": self.findings,
            "theta_findings": self.theta_findings,
            "limited": self.limited,
            "unchecked": self.unchecked,
            "state_unexposed": dict(sorted(self.state_unexposed.items())),
            "lost_update": self.lost_update,
            "limited_share": self.limited / self.findings if self.findings else 0.0,
            "unchecked_share": self.unchecked / self.findings if self.findings else 0.0,
            "lost_update_share": self.lost_update / self.findings if self.findings else 0.0,
            "failed_values": self.failed_values,
            "failed_cases": self.failed_cases,
            "resolution": {str(k): n for k, n in sorted(self.resolution.items())},
            "resolution_median": _median_bin(self.resolution),
            "resolution_worst": max(self.resolution, default=None),
            "blind_share": _blind_share(self.resolution),
            "state_resolution": {n: {str(k): c for k, c in sorted(h.items())}
                                 for n, h in sorted(self.state_resolution.items())},
            "state_blind_share": {n: _blind_share(h) for n, h in sorted(self.state_resolution.items())},
            "max_ratio": _enc(self.max_ratio),
            "worst": None if self.worst is None else {**self.worst, "ratio": _enc(self.worst["ratio"]),
                                                       "ulp": _enc(self.worst["ulp"])},
            "samples": {m: {k: [_enc(v) for v in vs] for k, vs in self.samples[m].items()} for m in _MODES},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "_Entry":
        e = cls(d["backend"], d["optimizer"], d["path"], d["dtype"])
        e.cases = {m: int(d["cases_by_mode"].get(m, 0)) for m in _MODES}
        e.samples = {m: {k: [_dec(v) for v in d["samples"].get(m, {}).get(k, [])] for k in ("step1", "last")}
                     for m in _MODES}
        for name in ("findings", "theta_findings", "limited", "unchecked", "lost_update", "failed_values", "failed_cases"):
            setattr(e, name, int(d.get(name, 0)))
        e.max_ratio = _dec(d["max_ratio"]) or 0.0
        e.resolution = Counter({int(k): int(n) for k, n in d.get("resolution", {}).items()})
        e.state_unexposed = Counter({k: int(n) for k, n in d.get("state_unexposed", {}).items()})
        e.state_resolution = {name: Counter({int(k): int(n) for k, n in h.items()})
                              for name, h in d.get("state_resolution", {}).items()}
        e.tests = {k: dict(v) for k, v in d.get("tests", {}).items()}
        w = d.get("worst")
        e.worst = None if w is None else {**w, "ratio": _dec(w["ratio"]), "ulp": _dec(w["ulp"])}
        e.flags = d.get("flags")
        e.known_deviation = d.get("known_deviation")
        return e

    def merge(self, other: "_Entry") -> None:
        for m in _MODES:
            self.cases[m] += other.cases[m]
            for k in ("step1", "last"):
                self.samples[m][k].extend(other.samples[m][k])
        for name in ("findings", "theta_findings", "limited", "unchecked", "lost_update", "failed_values", "failed_cases"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.max_ratio = _max_nan(self.max_ratio, other.max_ratio)
        self.resolution.update(other.resolution)
        self.state_unexposed.update(other.state_unexposed)
        for name, h in other.state_resolution.items():
            self.state_resolution.setdefault(name, Counter()).update(h)
        for nodeid, t in other.tests.items():
            mine = self.tests.get(nodeid)
            if mine is None:
                self.tests[nodeid] = dict(t)
            else:  # the same test in two reports (two runs merged): add up, keep the worse outcome
                mine["cases"] += t["cases"]
                mine["outcome"] = _worse_outcome(mine["outcome"], t["outcome"])
                if t.get("worker") and t.get("worker") != mine.get("worker"):
                    mine["worker"] = ",".join(x for x in (mine.get("worker"), t["worker"]) if x)
        if other.worst is not None:
            self.offer_worst(other.worst)
        self.flags = self.flags if self.flags is not None else other.flags
        self.known_deviation = self.known_deviation or other.known_deviation


class _ScheduleEntry:
    """Everything kept for one (backend, schedule, quantity): a row of the schedule drift table."""

    def __init__(self, backend: str, schedule: str, quantity: str):
        self.backend, self.schedule, self.quantity = backend, schedule, quantity
        self.cases = 0
        self.samples = {"first": [], "last": [], "max": [], "steps": []}  # per case
        self.values = 0
        self.limited = 0
        self.failed_values = 0
        self.failed_cases = 0
        self.max_ratio = 0.0
        self.max_closed_ratio = None  # recursive schedules only
        self.tests = {}
        self.worst = None
        self.known_deviation = None  # a deviation that excuses failures (xfail)
        self.drift_note = None  # a known deviation that shows as drift inside the tolerance

    @property
    def key(self) -> tuple:
        return (self.backend, self.schedule, self.quantity)

    test = _Entry.test
    verdict = _Entry.verdict
    offer_worst = _Entry.offer_worst

    def to_dict(self) -> dict:
        outcomes = [t["outcome"] for t in self.tests.values()]
        return {
            "backend": self.backend, "schedule": self.schedule, "quantity": self.quantity,
            "known_deviation": self.known_deviation, "drift_note": self.drift_note, "verdict": self.verdict(),
            "stale_known_deviation": "xpassed" in outcomes, "cases": self.cases,
            "tests": {k: dict(v) for k, v in sorted(self.tests.items())},
            "max_steps": int(max(self.samples["steps"], default=0)),
            "ulp": {k: _stats(self.samples[k]) for k in ("first", "last", "max")},
            "values": self.values, "limited": self.limited, "failed_values": self.failed_values,
            "failed_cases": self.failed_cases, "max_ratio": _enc(self.max_ratio),
            "max_closed_ratio": _enc(self.max_closed_ratio),
            "worst": None if self.worst is None else {**self.worst, "ratio": _enc(self.worst["ratio"]),
                                                       "ulp": _enc(self.worst["ulp"])},
            "samples": {k: [_enc(v) for v in vs] for k, vs in self.samples.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "_ScheduleEntry":
        e = cls(d["backend"], d["schedule"], d["quantity"])
        e.cases = int(d["cases"])
        e.samples = {k: [_dec(v) for v in d["samples"].get(k, [])] for k in ("first", "last", "max", "steps")}
        for name in ("values", "limited", "failed_values", "failed_cases"):
            setattr(e, name, int(d.get(name, 0)))
        e.max_ratio = _dec(d["max_ratio"]) or 0.0
        e.max_closed_ratio = _dec(d.get("max_closed_ratio"))
        e.tests = {k: dict(v) for k, v in d.get("tests", {}).items()}
        w = d.get("worst")
        e.worst = None if w is None else {**w, "ratio": _dec(w["ratio"]), "ulp": _dec(w["ulp"])}
        e.known_deviation = d.get("known_deviation")
        e.drift_note = d.get("drift_note")
        return e

    def merge(self, other: "_ScheduleEntry") -> None:
        self.cases += other.cases
        for k in self.samples:
            self.samples[k].extend(other.samples[k])
        for name in ("values", "limited", "failed_values", "failed_cases"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.max_ratio = _max_nan(self.max_ratio, other.max_ratio)
        self.max_closed_ratio = _max_nan(self.max_closed_ratio, other.max_closed_ratio)
        for nodeid, t in other.tests.items():
            mine = self.tests.get(nodeid)
            if mine is None:
                self.tests[nodeid] = dict(t)
            else:
                mine["cases"] += t["cases"]
                mine["outcome"] = _worse_outcome(mine["outcome"], t["outcome"])
        if other.worst is not None:
            self.offer_worst(other.worst)
        self.known_deviation = self.known_deviation or other.known_deviation
        self.drift_note = self.drift_note or other.drift_note


def _function(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


_OUTCOME_ORDER = {None: 0, "skipped": 1, "passed": 2, "xpassed": 3, "xfailed": 4, "failed": 5}


def _worse_outcome(a, b):
    return a if _OUTCOME_ORDER.get(a, 0) >= _OUTCOME_ORDER.get(b, 0) else b


def _max_nan(a: float, b: float) -> float:
    if a is None or math.isnan(a):
        return b
    if b is None or math.isnan(b):
        return a
    return max(a, b)


def _worse(a: dict, b: dict) -> bool:
    """Is worst-input candidate ``a`` worse than ``b``: higher ratio, then higher ulp, then nodeid (stable)."""
    ka = (a["ratio"], a["ulp"] if not math.isnan(a["ulp"]) else -1.0)
    kb = (b["ratio"], b["ulp"] if not math.isnan(b["ulp"]) else -1.0)
    if ka != kb:
        return ka > kb
    return (a.get("nodeid") or "") < (b.get("nodeid") or "")


# --------------------------------------------------------------------------- the collector

class DriftCollector:
    """Aggregates checked cases per (backend, optimizer, path, dtype); see the module docstring.

    ``backend_obj`` (optional) is asked for ``environment()`` and, where it has
    them, the constructor flags of a path; ``overrides`` (spec → module:Class)
    go into reproduction strings; ``worker`` labels the tests this collector
    saw (the xdist worker id).
    """

    def __init__(self, *, backend_obj=None, overrides: Optional[dict] = None, mapping: Optional[dict] = None,
                 worker: Optional[str] = None, run: Optional[dict] = None):
        self.entries: dict = {}
        self.targets: dict = {}  # backend name -> environment dict
        self.run: dict = dict(run or {})
        self.sources: list = []  # workers / reports merged in
        self._backend_obj = backend_obj
        self._overrides = dict(overrides or {})
        self._mapping = dict(mapping or {})  # hyper_map and holds of the --optimizer classes, for reproductions
        self._worker = worker
        self._node_keys: dict = {}  # nodeid -> {entry keys it added cases to}, for outcomes
        self._functions: set = set()  # test functions (nodeid without its parameters) that added cases
        self.schedules: dict = {}  # (backend, schedule, quantity) -> _ScheduleEntry
        self._schedule_nodes: dict = {}  # nodeid -> {schedule entry keys it added cases to}

    # -- collecting ------------------------------------------------------------
    def _entry(self, backend: str, optimizer: str, path: str, dtype: str) -> _Entry:
        key = (backend, optimizer, path, dtype)
        e = self.entries.get(key)
        if e is None:
            e = self.entries[key] = _Entry(*key)
            dev = find(target_of(self._backend_obj, backend, optimizer, path), optimizer, path, dtype,
                       "test_trajectory")
            e.known_deviation = dev.reason if dev else None
            e.flags = self._flags(optimizer, path)
        return e

    def _flags(self, optimizer: str, path: str) -> Optional[dict]:
        fn = getattr(self._backend_obj, "_path_flags", None)
        if fn is None:
            return None
        try:
            return {k: v for k, v in fn(optimizer, path).items()}
        except Exception:
            return None

    def add(self, nodeid: str, backend: str, path: str, data, report) -> None:
        """One checked case: ``data`` a ``backend.Case``, ``report`` its ``check.Report``."""
        e = self._entry(backend, report.optimizer, path, report.dtype)
        self._node_keys.setdefault(nodeid, set()).add(e.key)
        self._functions.add(_function(nodeid))
        mode = report.mode if report.mode in _MODES else "trajectory"
        e.cases[mode] += 1
        e.test(nodeid, self._worker)["cases"] += 1
        last_step = max([f.step for f in report.findings] + [b.step for b in report.bulk],
                        default=None)
        step1, last = None, None
        for f in report.findings:
            e.findings += 1
            if f.verdict == "limited":
                e.limited += 1
            if f.lost_update:
                e.lost_update += 1
            if f.verdict == "fail":
                e.failed_values += 1
            if f.quantity != "theta":
                continue
            e.theta_findings += 1
            if f.verdict not in ("ok", "fail"):
                continue
            if f.step == 0:
                step1 = f.ulp if step1 is None else _max_nan(step1, f.ulp)
            if f.step == last_step:
                last = f.ulp if last is None else _max_nan(last, f.ulp)
        for b in report.bulk:  # values decided in bulk; max_ulp a float64 estimate
            if b.verdict == "aside":  # not compared (a known deviation covers them): in no share
                continue
            e.findings += b.count
            e.lost_update += b.lost
            if b.verdict == "limited":
                e.limited += b.count
            if b.verdict == "fail":
                e.failed_values += b.count
            if b.verdict == "unchecked":
                e.unchecked += b.count
            if b.quantity != "theta":
                continue
            e.theta_findings += b.count
            if b.verdict != "ok":
                continue
            if b.step == 0:
                step1 = b.max_ulp if step1 is None else _max_nan(step1, b.max_ulp)
            if b.step == last_step:
                last = b.max_ulp if last is None else _max_nan(last, b.max_ulp)
        e.resolution.update(report.resolution)
        for u in getattr(report, "state_unknown", ()):
            e.state_unexposed.update(u.missing)
        for name, h in report.state_resolution.items():
            e.state_resolution.setdefault(name, Counter()).update(h)
        e.samples[mode]["step1"].append(step1)
        e.samples[mode]["last"].append(last)
        if not report.ok:
            e.failed_cases += 1
        worst = report.worst()
        if worst is not None:
            ratio = float(worst.ratio)
            e.max_ratio = _max_nan(e.max_ratio, ratio)
            candidate = {"ratio": ratio, "ulp": float(worst.ulp), "nodeid": nodeid, "mode": report.mode}
            if e.worst is None or _worse(candidate, e.worst):
                from .replay import reproduction
                candidate["finding"] = worst.describe(report.dtype)
                candidate["reproduction"] = reproduction(data, backend, path, report.mode, self._overrides or None,
                                                           **self._mapping)
                e.worst = candidate

    def add_schedule(self, nodeid: str, backend: str, report, reproduction: str = "",
                     known_deviation: Optional[str] = None, drift_note: Optional[str] = None) -> None:
        """One checked schedule case: ``report`` a ``conformance.schedule_check.ScheduleReport``;
        ``known_deviation`` names a deviation that xfails it, ``drift_note`` one that shows as drift."""
        for quantity in sorted({f.quantity for f in report.findings}):
            findings = [f for f in report.findings if f.quantity == quantity]
            key = (backend, report.case.schedule, quantity)
            e = self.schedules.get(key)
            if e is None:
                e = self.schedules[key] = _ScheduleEntry(*key)
            e.known_deviation = e.known_deviation or known_deviation
            e.drift_note = e.drift_note or (drift_note if quantity == "lr" else None)
            self._schedule_nodes.setdefault(nodeid, set()).add(key)
            e.cases += 1
            e.test(nodeid, self._worker)["cases"] += 1
            checked = [f for f in findings if f.verdict != "limited"]
            last = max(f.step for f in findings)
            e.samples["first"].append(max((f.ulp for f in checked if f.step == 0), default=None))
            e.samples["last"].append(max((f.ulp for f in checked if f.step == last), default=None))
            e.samples["max"].append(max((f.ulp for f in checked), default=None))
            e.samples["steps"].append(float(last + 1))
            e.values += len(findings)
            e.limited += len(findings) - len(checked)
            failed = [f for f in findings if f.verdict == "fail"]
            e.failed_values += len(failed)
            e.failed_cases += bool(failed)
            for f in checked:
                e.max_ratio = _max_nan(e.max_ratio, f.ratio)
                if f.closed_ratio is not None:
                    e.max_closed_ratio = _max_nan(e.max_closed_ratio, f.closed_ratio)
            worst = max(checked, key=lambda f: (f.ratio, f.ulp), default=None)
            if worst is not None:
                e.offer_worst({"ratio": float(worst.ratio), "ulp": float(worst.ulp), "nodeid": nodeid,
                               "finding": worst.describe(), "reproduction": reproduction})

    def outcome(self, nodeid: str, outcome: str, key: Optional[tuple] = None) -> None:
        """A test's outcome (passed, failed, xfailed, xpassed, skipped).

        ``key`` = (backend, optimizer, path, dtype) names the entry; without it
        the outcome goes to every entry the test added cases to.  Outcomes of tests
        whose function has added no case here (other tests in the same run) are dropped;
        a conformance test that failed before its first case (a backend error) still
        counts, once another test of its function has added a case.
        """
        for k in self._schedule_nodes.get(nodeid, ()):  # a schedule test: its rows only
            t = self.schedules[k].test(nodeid, self._worker)
            t["outcome"] = _worse_outcome(t["outcome"], outcome)
        if nodeid not in self._node_keys and _function(nodeid) not in self._functions:
            return  # a test that feeds no cases to the report (a property test, say): not its business
        keys = [key] if key is not None else sorted(self._node_keys.get(nodeid, ()))
        for k in keys:
            if outcome == "skipped" and k not in self.entries:
                continue  # a skipped test adds no entry of its own
            e = self._entry(*k)
            t = e.test(nodeid, self._worker)
            t["outcome"] = _worse_outcome(t["outcome"], outcome)

    def set_target(self, backend: str, env: dict) -> None:
        self.targets[backend] = env

    # -- JSON ------------------------------------------------------------------
    def to_dict(self) -> dict:
        entries = [self.entries[k].to_dict() for k in sorted(self.entries)]
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "run": self.run,
            "targets": self.targets,
            "sources": list(self.sources),
            "summary": {
                "entries": len(entries),
                "cases": sum(e["cases"] for e in entries),
                "verdicts": {v: sum(1 for e in entries if e["verdict"] == v) for v in (PASS, XFAIL, FAIL)},
            },
            "entries": entries,
            "schedules": [self.schedules[k].to_dict() for k in sorted(self.schedules)],
        }

    def to_json(self, indent: Optional[int] = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text_or_dict) -> "DriftCollector":
        d = json.loads(text_or_dict) if isinstance(text_or_dict, (str, bytes)) else text_or_dict
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a drift report (schema {d.get('schema')!r})")
        out = cls(run=d.get("run"))
        out.targets = dict(d.get("targets", {}))
        out.sources = list(d.get("sources", []))
        for ed in d.get("entries", []):
            e = _Entry.from_dict(ed)
            out.entries[e.key] = e
        for sd in d.get("schedules", []):
            e = _ScheduleEntry.from_dict(sd)
            out.schedules[e.key] = e
        return out

    def merge(self, other, source: Optional[str] = None) -> "DriftCollector":
        """Add ``other`` (a DriftCollector, its JSON text or its dict) into this one; returns self."""
        if not isinstance(other, DriftCollector):
            other = DriftCollector.from_json(other)
        for key, e in other.entries.items():
            mine = self.entries.get(key)
            if mine is None:
                self.entries[key] = _Entry.from_dict(e.to_dict())
            else:
                mine.merge(e)
        for key, e in other.schedules.items():
            mine = self.schedules.get(key)
            if mine is None:
                self.schedules[key] = _ScheduleEntry.from_dict(e.to_dict())
            else:
                mine.merge(e)
        for name, env in other.targets.items():
            self.targets.setdefault(name, env)
        for k, v in other.run.items():
            self.run.setdefault(k, v)
        self.sources.extend(s for s in other.sources if s not in self.sources)
        if source and source not in self.sources:
            self.sources.append(source)
        return self

    def write(self, path: str) -> None:
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        with open(path, "w") as f:
            f.write(self.to_json())
            f.write("\n")

    # -- the table ---------------------------------------------------------------
    def backends(self) -> list:
        return sorted({k[0] for k in self.entries} | {k[0] for k in self.schedules})

    def table(self, backend: Optional[str] = None) -> str:
        """A plain-text table of the entries (of one backend, or all)."""
        rows = [self.entries[k].to_dict() for k in sorted(self.entries) if backend is None or k[0] == backend]
        header = ["optimizer", "path", "dtype", "cases", "ulp@1 max", "p99", "med", "ulp@last max", "p99", "med",
                  "limited", "unchecked", "lost", "res. med", "worst", "blind", "state blind", "max err/bound", "verdict"]
        if backend is None:
            header = ["backend"] + header
        lines = []
        for r in rows:
            u1, ul = r["ulp"]["step1"], r["ulp"]["last"]
            cells = [r["optimizer"], r["path"], r["dtype"], str(r["cases"]),
                     _fmt(u1["max"]), _fmt(u1["p99"]), _fmt(u1["median"]),
                     _fmt(ul["max"]), _fmt(ul["p99"]), _fmt(ul["median"]),
                     _pct(r["limited_share"]), _pct(r["unchecked_share"]), _pct(r["lost_update_share"]),
                     _pow2(r.get("resolution_median")), _pow2(r.get("resolution_worst")),
                     _pct(r.get("blind_share", 0.0)), _state_blind(r.get("state_blind_share", {})),
                     _fmt(r["max_ratio"]),
                     r["verdict"] + (" (stale xfail)" if r["stale_known_deviation"] else "")]
            lines.append(([r["backend"]] if backend is None else []) + cells)
        widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(header)]
        numeric = set(range(len(header) - 1)) - set(range(3 + (backend is None)))

        def fmt_row(cells):
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        out = [fmt_row(header).rstrip(), "  ".join("-" * w for w in widths)]
        out += [fmt_row(l).rstrip() for l in lines]
        out.append("ulp@1 / ulp@last: the parameter's largest ULP error at step 1 / at the last step of each "
                   "trajectory case; max, p99 (nearest rank) and median over the cases.")
        out.append("limited / unchecked / lost: share of findings that are dtype-limited (any value accepted) / not "
                   "compared (phase 1 of the fast reference left them undecided past the case's limit of exact "
                   "comparisons, or a single step read state the backend did not report) / lost updates (θ + Δ = θ "
                   "in the dtype); max err/bound: the largest error/bound ratio (> 1 fails).")
        out.append("res. med / worst: resolution, the bound over the step's change |Δθ| (median and largest, to a "
                   "power of 2): a slip smaller than that share of the step passes; blind: share of θ values whose "
                   "bound is at least the change (the check cannot see a slip the size of the step); state blind: the same "
                   "share per state variable, from each case's second step on.")
        for r in rows:
            if r.get("state_unexposed"):
                counts = ", ".join(f"{name} ({n})" for name, n in r["state_unexposed"].items())
                out.append(f"{r['optimizer']} {r['path']} {r['dtype']}: single steps not checked, as they read state "
                           f"the backend did not report (state name and steps): {counts}; its trajectories are checked")
        if any(backend is None or k[0] == backend for k in self.schedules):
            out = ([] if not rows else out + [""]) + [self.schedule_table(backend)]
        return "\n".join(out)

    def schedule_table(self, backend: Optional[str] = None) -> str:
        """The learning-rate schedule rows (of one backend, or all) as a plain-text table."""

        rows = [self.schedules[k].to_dict() for k in sorted(self.schedules) if backend is None or k[0] == backend]
        header = ["schedule", "value", "torch form", "cases", "max steps", "ulp@first max", "ulp@last max", "med",
                  "max ulp", "limited", "max err/bound", "max err/closed bound", "verdict"]
        if backend is None:
            header = ["backend"] + header
        lines = []
        for r in rows:
            spec = SCHEDULES.get(r["schedule"])
            form = "closed" if r["quantity"] != "lr" or spec is None else spec.torch_form
            verdict = r["verdict"] + (" (stale xfail)" if r["stale_known_deviation"] else "")
            for note in (r["known_deviation"], r["drift_note"]):
                verdict += f" [{note}]" if note else ""
            cells = [r["schedule"], r["quantity"], form, str(r["cases"]), str(r["max_steps"]),
                     _fmt(r["ulp"]["first"]["max"]), _fmt(r["ulp"]["last"]["max"]), _fmt(r["ulp"]["last"]["median"]),
                     _fmt(r["ulp"]["max"]["max"]), str(r["limited"]), _fmt(r["max_ratio"]),
                     _fmt(r["max_closed_ratio"]), verdict]
            lines.append(([r["backend"]] if backend is None else []) + cells)
        widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(header)]
        text = set(range(3 + (backend is None))) | {len(header) - 1}

        def fmt_row(cells):
            return "  ".join(c.ljust(w) if i in text else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        out = [fmt_row(header).rstrip(), "  ".join("-" * w for w in widths)]
        out += [fmt_row(l).rstrip() for l in lines]
        out.append("Learning-rate schedules: per case the largest binary64 ULP error of a value at the first step "
                   "(n = 0) / at the last step / anywhere; max err/bound against the tolerance of the form torch "
                   "evaluates (> 1 fails); max err/closed bound against the bound of a closed-form evaluation, for "
                   "the recursive schedulers (> 1: the recursion drifts beyond what the closed formula allows).")
        return "\n".join(out)


def _fmt(x) -> str:
    if x is None:
        return "-"
    x = _dec(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.3g}"


def _median_bin(hist: dict):
    """The bin of the median value of a ⌊log2⌋ histogram, or None when empty."""
    total = sum(hist.values())
    seen = 0
    for k in sorted(hist):
        seen += hist[k]
        if 2 * seen >= total:
            return k
    return None


def _blind_share(hist: dict) -> float:
    total = sum(hist.values())
    return sum(n for k, n in hist.items() if k >= 0) / total if total else 0.0


def _state_blind(shares: dict) -> str:
    """Each state variable's blind share, as ``name share`` pairs ("-" when none was measured)."""
    return " ".join(f"{n} {_pct(x)}" for n, x in sorted(shares.items())) or "-"


def _pow2(k) -> str:
    """A resolution bin as text: 2^k, or the clipped ends."""
    from .check import RESOLUTION_RANGE

    if k is None:
        return "-"
    lo, hi = RESOLUTION_RANGE
    return f"≥2^{hi}" if k >= hi else f"<2^{lo + 1}" if k <= lo else f"2^{k}"


def _pct(x) -> str:
    return "0" if not x else f"{100 * x:.1f}%" if x >= 0.001 else "<0.1%"
