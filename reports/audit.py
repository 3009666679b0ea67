"""``python -m conformance audit``: run the conformance suite for one class (or backend), verdict per concern.

    python -m conformance audit mypkg.optim:Lion --as lion [--backend torch-cpu] [--dtype float32]...
                                [--path PATH]... [--profile default|ci|hunt|triage] [--hyper-map ours=theirs]... [--hold name=value]...
                                [--schedules] [--report DIR]
    python -m conformance audit --backend mypkg.backend:obj [--spec NAME]... [same options]

It runs pytest in this process on ``conformance/test_conformance.py`` and
``conformance/test_properties.py`` (and ``test_schedules.py`` with
``--schedules``), with a small plugin that records every test's outcome, and
groups the outcomes into concerns:

* **update semantics**, one row per optimizer × path × dtype: ``test_trajectory``
  and ``test_single_steps`` (every value within the derived error bound of the
  exact result; cases have one or two parameter groups with different
  hyperparameters, so per-group hyperparameters are part of this concern);
* **API and state behaviour**, one row per property test of
  ``conformance/test_properties.py`` (see ``CONCERNS``);
* **schedules**, when asked.

A concern *conforms* when every test of it that ran passed, *departs* when one
failed (the first failure's message and its ``Reproduce with:`` block are
printed), is a *known deviation* when the only failures are recorded in
``conformance/known_deviations.py`` (xfail), and is *not checked* when nothing
of it ran (the skip reasons, or "not selected").  The exit status is 0 only if
no checked concern departs (1 otherwise; 2 for a usage error).

``--report DIR`` writes ``DIR/report.html`` (``reports/audit_report.py``:
verdict table, drift table, error-per-step plot, each failure's reproduction),
``DIR/audit.json`` (the verdicts) and ``DIR/drift.json`` (the drift report).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import conformance
from conformance.known_deviations import SCHEDULE_TESTS

try:
    _GROUP = BaseExceptionGroup  # Python >= 3.11
except NameError:  # Python 3.10 (pyproject allows it): the backport Hypothesis itself raises there
    from exceptiongroup import BaseExceptionGroup as _GROUP

PACKAGE = Path(conformance.__file__).resolve().parent  # the suite's test modules

UPDATE_TESTS = ("test_trajectory", "test_single_steps")

#: property test -> (concern, what conforming means); the order is the report's
CONCERNS = {
    "test_defaults_are_the_specs": ("defaults", "default hyperparameters equal the spec's"),
    "test_out_of_domain_hyperparameters_are_refused": (
        "validation", "hyperparameters outside the spec's domain (and forbidden combinations) are refused"),
    "test_maximize_is_descent_on_the_negated_gradient": (
        "maximize", "maximize=True is descent on -g, bit for bit"),
    "test_parameter_without_gradient_is_left_alone": (
        "None gradients", "a parameter whose grad is None keeps its bits and its state"),
    "test_several_tensors_at_once_equal_each_alone": (
        "several tensors", "stepping tensors together equals stepping each alone"),
    "test_resume_from_saved_state_continues_identically": (
        "save/restore", "state_dict round trip mid-trajectory changes nothing"),
    "test_same_inputs_same_outputs": ("determinism", "the same inputs give the same bits twice"),
}

CONFORMS, DEPARTS, KNOWN, NOT_CHECKED = "conforms", "departs", "known deviation", "not checked"


# --------------------------------------------------------------------------- collecting outcomes

class Recorder:
    """A pytest plugin: the selected items, those deselected (and why), each test's outcome and failure text."""

    def __init__(self, dtypes=(), paths=(), out=sys.stderr):
        self.dtypes, self.paths, self.out = set(dtypes), set(paths), out
        self.items = {}  # nodeid -> {"test", "params"}
        self.deselected = {}  # nodeid -> {"test", "params", "why"}
        self.results = {}  # nodeid -> {"outcome", "why", "longrepr", "seconds"}
        self.order = []
        self.messages = {}  # nodeid -> "ExceptionType: message" of its first failure
        self._start = {}

    def pytest_collection_modifyitems(self, config, items):
        keep, drop = [], []
        for item in items:
            params = dict(getattr(getattr(item, "callspec", None), "params", {}))
            params.pop("data", None)
            info = {"test": item.originalname if hasattr(item, "originalname") else item.name,
                    "params": {k: v for k, v in params.items() if isinstance(v, (str, int, float))}}
            why = None
            if self.dtypes and params.get("dtype") not in (None, "-") and params["dtype"] not in self.dtypes:
                why = f"dtype {params['dtype']} not selected (--dtype {' '.join(sorted(self.dtypes))})"
            elif self.paths and params.get("path") not in (None, "-") and params["path"] not in self.paths:
                why = f"path {params['path']} not selected (--path {' '.join(sorted(self.paths))})"
            if why:
                drop.append(item)
                self.deselected[item.nodeid] = {**info, "why": why}
            else:
                keep.append(item)
                self.items[item.nodeid] = info
        if drop:
            items[:] = keep
            config.hook.pytest_deselected(items=drop)

    def pytest_deselected(self, items):
        for item in items:  # -k or -m (this plugin's own choices are recorded already)
            if item.nodeid in self.items:
                self.deselected[item.nodeid] = {**self.items.pop(item.nodeid), "why": "not selected (-k/-m)"}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """The raised exception's own message (without pytest's traceback or Hypothesis's notes)."""
        report = yield
        if call.excinfo is not None and report.failed:
            exc = call.excinfo.value
            while isinstance(exc, _GROUP) and exc.exceptions:  # Hypothesis: several distinct failures
                exc = exc.exceptions[0]
            self.messages.setdefault(item.nodeid, f"{type(exc).__name__}: {exc}")
        return report

    def pytest_runtest_logstart(self, nodeid, location):
        self._start[nodeid] = time.monotonic()

    def pytest_runtest_logreport(self, report):
        nodeid = report.nodeid
        rec = self.results.get(nodeid)
        if report.when == "call" or (report.when == "setup" and not report.passed) \
                or (report.when == "teardown" and report.failed):
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.skipped else "xpassed"
                why = report.wasxfail
            elif report.skipped:
                outcome = "skipped"
                why = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
                why = why.removeprefix("Skipped: ")
            else:
                outcome, why = report.outcome, None
            if rec is None or outcome == "failed":
                rec = {"outcome": outcome, "why": why,
                       "message": self.messages.get(nodeid, "") if report.failed else "",
                       "longrepr": report.longreprtext if report.failed else "",
                       "seconds": round(time.monotonic() - self._start.get(nodeid, time.monotonic()), 1)}
                self.results[nodeid] = rec
                if nodeid not in self.order:
                    self.order.append(nodeid)
        if report.when == "teardown" and nodeid in self.results:
            self._progress(nodeid)

    def _progress(self, nodeid):
        info = self.items.get(nodeid, {"test": nodeid, "params": {}})
        p = info["params"]
        where = " ".join(str(p[k]) for k in ("optimizer", "spec_name", "schedule", "path", "dtype") if k in p)
        rec = self.results[nodeid]
        done, total = len(self.order), len(self.items)
        print(f"[{done:>3}/{total}] {where:<28} {info['test']:<52} {rec['outcome']} ({rec['seconds']} s)",
              file=self.out, flush=True)


# --------------------------------------------------------------------------- failures

def split_failure(message: str, longrepr: str = "") -> tuple[str, str]:
    """(what departed, the ``Reproduce with:`` block) of a failure: from the exception's message, else from
    the ``E`` lines of pytest's long representation."""
    text = message
    if not text:
        lines = [l[1:] for l in longrepr.splitlines() if l.startswith("E")]
        text = textwrap.dedent("\n".join(lines)) if lines else longrepr
    head, sep, repro = text.partition("Reproduce with:")
    head = head.strip().removeprefix("AssertionError: ")
    lines = head.splitlines()
    while len(lines) > 1 and lines[-1].startswith("assert "):  # pytest's rewritten expression after the message
        lines.pop()
    head = "\n".join(lines).rstrip()
    if sep and not message:  # Hypothesis's notes follow the block in pytest's text: cut at a blank line
        repro = re.split(r"\n[ \t]*\n", repro.strip("\n"))[0]
    return head, textwrap.dedent(repro.strip("\n")).rstrip() if sep else ""


# --------------------------------------------------------------------------- verdicts

def _row(concern: str, label: str, meaning: str, nodeids: list, rec: Recorder, not_selected: list) -> dict:
    results = [(n, rec.results[n]) for n in rec.order if n in nodeids]
    outcomes = [r["outcome"] for _, r in results]
    row = {"concern": concern, "label": label, "meaning": meaning,
           "counts": {o: outcomes.count(o) for o in sorted(set(outcomes))}}
    failed = [(n, r) for n, r in results if r["outcome"] in ("failed", "xpassed")]
    skipped = sorted({r["why"] for _, r in results if r["outcome"] == "skipped" and r["why"]})
    if failed:
        n, r = failed[0]
        row["verdict"] = DEPARTS
        if r["outcome"] == "xpassed":
            row["first_departure"] = f"{n} passed although a known deviation covers it (stale): {r['why']}"
            row["reproduction"] = ""
        else:
            row["first_departure"], row["reproduction"] = split_failure(r["message"], r["longrepr"])
        row["test"] = n
        row["departures"] = len(failed)
    elif any(o == "passed" for o in outcomes):
        row["verdict"] = CONFORMS
    elif any(o == "xfailed" for o in outcomes):
        row["verdict"] = KNOWN
        row["why"] = sorted({r["why"] for _, r in results if r["outcome"] == "xfailed"})[0]
    else:
        row["verdict"] = NOT_CHECKED
        row["why"] = "; ".join(skipped) if skipped else ("; ".join(sorted(set(not_selected))) or "not selected")
        row["deselected"] = not results
    if skipped and row["verdict"] != NOT_CHECKED:
        row["note"] = f"{outcomes.count('skipped')} skipped: " + "; ".join(skipped)
    if row["verdict"] == CONFORMS and "xfailed" in outcomes:
        row["note"] = (row.get("note", "") + "; " if row.get("note") else "") + \
            f"{outcomes.count('xfailed')} known deviation(s)"
    return row


def verdicts(rec: Recorder, schedules: bool) -> list[dict]:
    """One row per concern: update semantics per optimizer × path × dtype, then each property, then schedules."""
    rows = []
    every = {**rec.items, **rec.deselected}
    update_keys = []
    for n, info in every.items():
        p = info["params"]
        if info["test"] in UPDATE_TESTS:
            key = (p.get("optimizer"), p.get("path"), p.get("dtype"))
            if key not in update_keys:
                update_keys.append(key)
    dtype_order = ["float16", "bfloat16", "float32", "float64"]
    update_keys.sort(key=lambda k: (str(k[0]), str(k[1]),
                                    dtype_order.index(k[2]) if k[2] in dtype_order else len(dtype_order), str(k[2])))
    for key in update_keys:
        ids = [n for n, i in rec.items.items() if i["test"] in UPDATE_TESTS
               and (i["params"].get("optimizer"), i["params"].get("path"), i["params"].get("dtype")) == key]
        why = [d["why"] for d in rec.deselected.values() if d["test"] in UPDATE_TESTS
               and (d["params"].get("optimizer"), d["params"].get("path"), d["params"].get("dtype")) == key]
        label = " ".join(k for k in key if k and k != "-")
        rows.append(_row("updates", f"update semantics: {label}",
                         "every step within the error bound of the exact step/trajectory "
                         "(1-2 groups with different hyperparameters)", ids, rec, why))
    if not update_keys:
        rows.append(_row("updates", "update semantics", "", [], rec, ["no test_trajectory/test_single_steps"]))
    for test, (concern, meaning) in CONCERNS.items():
        ids = [n for n, i in rec.items.items() if i["test"] == test]
        why = [d["why"] for d in rec.deselected.values() if d["test"] == test]
        rows.append(_row(concern, concern, meaning, ids, rec, why or ["not selected"]))
    ids = [n for n, i in rec.items.items() if i["test"] in SCHEDULE_TESTS]
    rows.append(_row("schedules", "schedules", "learning-rate schedules within the bound of the exact values",
                     ids, rec, ["not asked (--schedules)"] if not schedules else ["not selected"]))
    return rows


def headline(rows: list[dict]) -> str:
    """``updates conform; validation departs; ...``: one word per concern, rows of a concern combined."""
    order, by = [], {}
    for r in rows:
        if r["concern"] not in by:
            order.append(r["concern"])
        by.setdefault(r["concern"], [])
        if not (r.get("deselected") and r["concern"] == "updates"):  # a dtype or path left out on purpose
            by[r["concern"]].append(r["verdict"])
    parts = []
    for c in order:
        vs = by[c]
        plural = c in ("updates", "defaults", "None gradients", "several tensors", "schedules")
        if DEPARTS in vs:
            word = "depart" if plural else "departs"
        elif CONFORMS in vs:
            word = ("conform" if plural else "conforms") + (" (with known deviations)" if KNOWN in vs else "") \
                + (" (partly not checked)" if NOT_CHECKED in vs else "")
        elif KNOWN in vs:
            word = "known deviation"
        else:
            word = "not checked"
        parts.append(f"{c} {word}")
    return "; ".join(parts)


def render_text(rows: list[dict], title: str) -> str:
    width = max(len(r["label"]) for r in rows)
    out = [title, ""]
    for r in rows:
        line = f"  {r['label']:<{width}}  {r['verdict']}"
        if r["verdict"] == NOT_CHECKED:
            line += f": {r['why']}"
        elif r["verdict"] == KNOWN:
            line += f": {r['why']}"
        elif r.get("note"):
            line += f" ({r['note']})"
        out.append(line)
    departing = [r for r in rows if r["verdict"] == DEPARTS]
    for r in departing:
        out += ["", f"{r['label']} departs ({r['departures']} failing test(s); first: {r['test']}):"]
        out += ["    " + l for l in r["first_departure"].splitlines()]
        if r["reproduction"]:
            out += ["  Reproduce with:"] + ["    " + l for l in r["reproduction"].splitlines()]
    out += ["", "verdict: " + headline(rows)]
    return "\n".join(out)


# --------------------------------------------------------------------------- the command

def parse(argv: list) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m conformance audit",
                                 description="Run the conformance suite for one optimizer class (or a backend) "
                                             "and print a verdict per concern.")
    ap.add_argument("target", nargs="?", metavar="module:Class",
                    help="a class with torch.optim's API (needs --as)")
    ap.add_argument("--as", dest="as_spec", metavar="SPEC", help="the spec the class implements (e.g. adam)")
    ap.add_argument("--backend", default=None,
                    help="torch-cpu (default with a class), torch-cuda, numpy, or module:attr naming a backend")
    ap.add_argument("--spec", action="append", default=[], help="with --backend: only this spec (repeatable)")
    ap.add_argument("--dtype", action="append", default=[], help="only this dtype (repeatable)")
    ap.add_argument("--path", action="append", default=[], help="only this implementation path (repeatable)")
    ap.add_argument("--profile", default="default",
                    help="Hypothesis profile: ci, default, hunt, triage (ci without shrinking) (default: default)")
    ap.add_argument("--hyper-map", action="append", default=[], metavar="ours=theirs",
                    help="the class names a spec hyperparameter differently (repeatable)")
    ap.add_argument("--hold", action="append", default=[], metavar="name=value",
                    help="the class has no keyword for a spec hyperparameter: draw it only at value (repeatable)")
    ap.add_argument("--schedules", action="store_true", help="also check the backend's learning-rate schedules")
    ap.add_argument("--report", metavar="DIR", help="write DIR/report.html, DIR/audit.json and DIR/drift.json")
    ap.add_argument("--drift-steps", type=int, default=100,
                    help="steps of the error-per-step plot in the report (default 100; 0: no plot)")
    ap.add_argument("--pytest-arg", action="append", default=[], metavar="ARG", help="passed on to pytest")
    args = ap.parse_args(argv)
    if args.target and not args.as_spec:
        ap.error("a class needs --as SPEC (the spec it implements)")
    if args.as_spec and not args.target:
        ap.error("--as needs a module:Class")
    if not args.target and not args.backend:
        ap.error("give a module:Class with --as SPEC, or --backend")
    if args.target and ":" not in args.target:
        ap.error(f"{args.target!r}: expected module:Class")
    import spec as spec_pkg
    from reference.formats import get_format
    try:
        for name in ([args.as_spec] if args.as_spec else []) + args.spec:
            spec_pkg.get(name)
        for d in args.dtype:
            get_format(d)
    except (KeyError, ValueError) as e:
        ap.error(str(e.args[0] if e.args else e))
    from hypothesis import settings
    from conformance import profiles  # noqa: F401 - registers the profiles
    try:
        settings.get_profile(args.profile)
    except Exception:
        ap.error(f"unknown Hypothesis profile {args.profile!r}: known are ci, default, hunt, triage, campaign")
    args.backend = args.backend or "torch-cpu"
    return args


def pytest_args(args, drift_json: str) -> list:
    files = [str(PACKAGE / "test_conformance.py"), str(PACKAGE / "test_properties.py")]
    if args.schedules:
        files.append(str(PACKAGE / "test_schedules.py"))
    out = [*files, f"--backend={args.backend}", f"--hypothesis-profile={args.profile}",
           f"--drift-report={drift_json}", "-p", "no:cacheprovider", "-p", "no:xdist",
           "-p", "no:terminal", f"--rootdir={PACKAGE.parent}"]
    if args.target:
        out += ["--optimizer", f"{args.as_spec}={args.target}", "--spec", args.as_spec]
        out += [x for m in args.hyper_map for x in ("--hyper-map", f"{args.as_spec}:{m}")]
        out += [x for m in args.hold for x in ("--hold", f"{args.as_spec}:{m}")]
    for s in args.spec:
        out += ["--spec", s]
    return out + list(args.pytest_arg)


def _backend_object(args):
    """The backend the suite ran, for the report's plot: with the audited class when there is one."""
    if not args.target:
        return None
    from conformance import backends
    hyper = dict(m.split("=", 1) for m in args.hyper_map)
    from conformance.plugin import hold_value
    import spec as spec_pkg
    spec = spec_pkg.get(args.as_spec)
    holds = {name: hold_value(spec, name, text) for name, _, text in (m.partition("=") for m in args.hold)}
    return backends.load(args.backend, overrides={args.as_spec: backends.load_class(args.target)},
                         hyper_map={args.as_spec: hyper} if hyper else None,
                         holds={args.as_spec: holds} if holds else None)


def main(argv: list | None = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))

    what = f"{args.target} as {args.as_spec}" if args.target else f"backend {args.backend}"
    scope = ", ".join(filter(None, [f"dtype {' '.join(args.dtype)}" if args.dtype else "",
                                    f"path {' '.join(args.path)}" if args.path else ""])) or "every path and dtype"
    print(f"audit: {what} on {args.backend}, {scope}, Hypothesis profile {args.profile}", file=sys.stderr, flush=True)
    tmp = None
    if args.report:
        os.makedirs(args.report, exist_ok=True)
        drift_json = os.path.join(args.report, "drift.json")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="conformance-audit-")
        drift_json = os.path.join(tmp.name, "drift.json")
    rec = Recorder(args.dtype, args.path)
    start = time.monotonic()
    code = pytest.main(pytest_args(args, drift_json), plugins=[rec])
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.INTERRUPTED):
        print(f"audit: pytest stopped ({code.name}); no verdict", file=sys.stderr)
        return 2
    rows = verdicts(rec, args.schedules)
    title = f"Conformance audit of {what} on {args.backend} ({args.profile} profile, " \
            f"{len(rec.order)} tests in {time.monotonic() - start:.0f} s)"
    print(render_text(rows, title))
    departs = any(r["verdict"] == DEPARTS for r in rows)
    if args.report:
        result = {"schema": "optimizer-conformance/audit", "version": 1, "title": title,
                  "target": args.target, "as": args.as_spec, "backend": args.backend, "profile": args.profile,
                  "dtypes": args.dtype, "paths": args.path, "headline": headline(rows), "concerns": rows,
                  "tests": {n: {**rec.items.get(n, {}), **rec.results[n]} for n in rec.order},
                  "exit_status": int(departs)}
        with open(os.path.join(args.report, "audit.json"), "w") as f:
            json.dump(result, f, indent=1)
        from .audit_report import write_report
        html = write_report(args.report, result, drift_json, args, _backend_object(args))
        print(f"report: {html} (and audit.json, drift.json)", file=sys.stderr)
    if tmp is not None:
        tmp.cleanup()
    return 1 if departs else 0
