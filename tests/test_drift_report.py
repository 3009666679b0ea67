"""Tests for the drift report (conformance/run_report.py, its plugin wiring) and the drift study (reports/drift_study.py).

The two subprocess runs of the conformance suite use ``-p tests.drift_fast_plugin``
(the ``ci`` profile without shrinking) so that a currently failing case cannot
spend minutes shrinking; the aggregation they check is the same.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import mpmath
import numpy as np
import pytest

from conformance.backend import Case, Group, for_backend
from conformance.check import Bulk, Finding, Report, check
from conformance.environment import target_environment
from conformance.run_report import SCHEMA, DriftCollector, percentile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = (int, float)


def _num(x) -> bool:
    """A JSON number, or one of the strings that stand for inf/nan."""
    return (isinstance(x, NUMBER) and not isinstance(x, bool)) or x in ("inf", "-inf", "nan")


def _run(args, timeout=110):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


# --------------------------------------------------------------------------- building blocks

def _case(optimizer="sgd", dtype="float32", lr=0.5):
    p = np.array([1.0, -2.0], dtype=np.float32)
    grads = [[[np.array([0.5, 0.25], dtype=np.float32)]], [[np.array([-1.0, 2.0], dtype=np.float32)]]]
    return Case(optimizer, dtype, [Group({"lr": lr}, [p])], grads)


def _finding(step, ulp, ratio, verdict="ok", quantity="theta", lost=False):
    return Finding(step, 0, 0, (0,), quantity, np.float32(1.0), mpmath.mpf(1), mpmath.mpf(1e-7), ulp, ratio,
                   verdict, "", lost)


def _report(step1_ulp, last_ulp, ratio=0.1, mode="trajectory", extra=()):
    r = Report("sgd", "float32", mode)
    r.findings = [_finding(0, step1_ulp, ratio / 2), _finding(1, 0.1, 0.0), _finding(2, last_ulp, ratio),
                  _finding(2, 99.0, 0.0, verdict="limited"), *extra]
    return r


NODE = "conformance/test_conformance.py::test_trajectory[sgd-for-loop-float32]"


# --------------------------------------------------------------------------- statistics and merge

def test_percentile_is_nearest_rank():
    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 50) == 50.0
    assert percentile(xs, 99) == 99.0
    assert percentile(xs, 100) == 100.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([None, 2.0, math.inf, 1.0], 50) == 2.0
    assert percentile([], 50) is None


def test_add_statistics():
    c = DriftCollector()
    c.add(NODE, "numpy", "for-loop", _case(), _report(0.25, 3.0, ratio=0.5,
                                                        extra=[_finding(2, 0.0, 0.0, quantity="momentum_buffer")]))
    c.add(NODE, "numpy", "for-loop", _case(), _report(0.5, 1.0, ratio=0.25,
                                                        extra=[_finding(1, 0.0, 0.0, lost=True)]))
    e = c.to_dict()["entries"][0]
    assert (e["backend"], e["optimizer"], e["path"], e["dtype"]) == ("numpy", "sgd", "for-loop", "float32")
    assert e["cases"] == 2 and e["cases_by_mode"] == {"trajectory": 2, "step": 0}
    assert e["ulp"]["step1"] == {"n": 2, "max": 0.5, "p99": 0.5, "median": 0.25}
    assert e["ulp"]["last"] == {"n": 2, "max": 3.0, "p99": 3.0, "median": 1.0}  # the limited 99 ulp is not counted
    assert e["findings"] == 10 and e["limited"] == 2 and e["lost_update"] == 1
    assert e["limited_share"] == pytest.approx(0.2) and e["lost_update_share"] == pytest.approx(0.1)
    assert e["max_ratio"] == 0.5
    assert e["worst"]["ratio"] == 0.5 and "replay(backend='numpy'" in e["worst"]["reproduction"]
    assert e["verdict"] == "pass"
    assert e["tests"][NODE]["cases"] == 2


def test_unchecked_values_are_a_share_of_their_own_in_the_json_and_the_table():
    """Values phase 1 left undecided past the case's limit of exact comparisons are not compared: the table says
    how many, beside the limited share, rather than leaving it to the notes of each case."""
    r = _report(0.25, 3.0)  # 4 findings, one limited
    r.bulk = [Bulk(1, 0, 0, "theta", 5, 0, math.nan, "unchecked", "not decided by phase 1"),
              Bulk(1, 0, 0, "theta", 11, 0, 0.5, "ok")]
    c = DriftCollector()
    c.add(NODE, "numpy", "for-loop", _case(), r)
    e = c.to_dict()["entries"][0]
    assert e["findings"] == 20 and e["unchecked"] == 5 and e["limited"] == 1
    assert e["unchecked_share"] == pytest.approx(0.25) and e["limited_share"] == pytest.approx(0.05)
    header, _, row = c.table("numpy").splitlines()[:3]
    cells = dict(zip(re.split(r"\s{2,}", header), re.split(r"\s{2,}", row)))  # columns: two spaces apart
    assert cells["limited"] == "5.0%" and cells["unchecked"] == "25.0%" and cells["lost"] == "0"


def test_merge_equals_collecting_everything_in_one():
    reports = [_report(0.1 * k, float(k), ratio=0.1 * k, mode="trajectory" if k % 3 else "step") for k in range(1, 10)]
    reports[4].findings.append(_finding(1, 40.0, 2.0, verdict="fail"))
    nodes = [NODE.replace("sgd-", f"sgd{k}-") for k in range(9)]  # xdist runs each test on one worker
    whole, a, b = DriftCollector(), DriftCollector(worker="gw0"), DriftCollector(worker="gw1")
    for k, (node, rep) in enumerate(zip(nodes, reports)):
        whole.add(node, "numpy", "for-loop", _case(lr=float(k)), rep)
        (a if k < 5 else b).add(node, "numpy", "for-loop", _case(lr=float(k)), rep)
    a.outcome(nodes[4], "failed")
    whole.outcome(nodes[4], "failed")
    merged = DriftCollector().merge(a.to_json(), source="gw0").merge(b, source="gw1")
    got, want = merged.to_dict()["entries"], whole.to_dict()["entries"]
    assert len(got) == len(want) == 1
    g, w = got[0], want[0]
    for key in ("cases", "cases_by_mode", "ulp", "ulp_by_mode", "findings", "limited", "lost_update",
                "limited_share", "lost_update_share", "max_ratio", "failed_cases", "verdict"):
        assert g[key] == w[key], key
    assert g["verdict"] == "FAIL" and g["max_ratio"] == 2.0
    assert g["worst"]["ratio"] == 2.0 and g["worst"]["reproduction"] == w["worst"]["reproduction"]
    assert sorted(g["samples"]["trajectory"]["last"]) == sorted(w["samples"]["trajectory"]["last"])
    assert {t["worker"] for t in g["tests"].values()} == {"gw0", "gw1"}
    assert sum(t["cases"] for t in g["tests"].values()) == g["cases"] == 9
    assert merged.sources == ["gw0", "gw1"]
    # merging is additive: a report merged into itself doubles the counts
    twice = DriftCollector().merge(merged).merge(merged.to_json())
    assert twice.to_dict()["entries"][0]["cases"] == 18


def test_verdicts_from_outcomes_and_known_deviations():
    pytest.importorskip("torch")
    from conformance.backends.torch_backend import make
    c = DriftCollector(backend_obj=make("torch-cpu"))  # known deviations need the implementation it runs
    def failing():
        return _report(0.1, 1.0, extra=[_finding(1, 40.0, 2.0, verdict="fail")])

    c.add("n1", "torch-cpu", "for-loop", _case("nadam", "float64"), _with(failing(), "nadam", "float64"))
    c.add("n2", "torch-cpu", "for-loop", _case(), failing())
    c.add("n3", "torch-cpu", "foreach", _case(), _report(0.1, 1.0))
    c.outcome("n3", "passed")
    verdicts = {(e["optimizer"], e["path"], e["dtype"]): e for e in c.to_dict()["entries"]}
    assert verdicts[("nadam", "for-loop", "float64")]["verdict"] == "xfail-known"
    assert verdicts[("nadam", "for-loop", "float64")]["known_deviation"]
    assert verdicts[("sgd", "for-loop", "float32")]["verdict"] == "FAIL"
    assert verdicts[("sgd", "foreach", "float32")]["verdict"] == "pass"
    c.outcome("n2", "xfailed")
    assert c.entries[("torch-cpu", "sgd", "for-loop", "float32")].verdict() == "xfail-known"
    c.add("m.py::test_t[a]", "torch-cpu", "foreach", _case(), _report(0.1, 1.0))
    c.outcome("m.py::test_t[b]", "failed", key=("torch-cpu", "adam", "fused", "float16"))  # failed before a case
    assert c.entries[("torch-cpu", "adam", "fused", "float16")].verdict() == "FAIL"
    c.outcome("m.py::test_property[c]", "failed", key=("torch-cpu", "adam", "foreach", "float16"))
    assert ("torch-cpu", "adam", "foreach", "float16") not in c.entries  # feeds no cases: not in the report
    table = c.table("torch-cpu")
    assert "xfail-known" in table and "FAIL" in table and table.splitlines()[0].startswith("optimizer")


def _with(report, optimizer, dtype):
    report.optimizer, report.dtype = optimizer, dtype
    return report


# --------------------------------------------------------------------------- JSON schema

def check_schema(d: dict) -> None:
    assert d["schema"] == SCHEMA and d["version"] == 1
    assert isinstance(d["created"], str)
    run = d["run"]
    assert isinstance(run, dict)
    for key in ("args", "backend", "hypothesis_profile"):
        assert key in run, key
    assert isinstance(d["targets"], dict) and d["targets"]
    for name, env in d["targets"].items():
        for key in ("python", "numpy", "device", "device_name", "backend"):
            assert key in env, (name, key)
        if name.startswith("torch-"):
            for key in ("torch", "cuda", "matmul_allow_tf32", "cudnn_allow_tf32", "cpu_denormals_flushed"):
                assert key in env, (name, key)
    assert isinstance(d["sources"], list)
    assert set(d["summary"]) == {"entries", "cases", "verdicts"}
    assert d["summary"]["entries"] == len(d["entries"])
    for e in d["entries"]:
        for key in ("backend", "optimizer", "path", "dtype", "verdict"):
            assert isinstance(e[key], str), key
        assert e["verdict"] in ("pass", "FAIL", "xfail-known")
        assert e["flags"] is None or isinstance(e["flags"], dict)
        assert e["known_deviation"] is None or isinstance(e["known_deviation"], str)
        assert isinstance(e["cases"], int) and e["cases"] == sum(e["cases_by_mode"].values())
        for point in ("step1", "last"):
            s = e["ulp"][point]
            assert set(s) == {"n", "max", "p99", "median"} and isinstance(s["n"], int)
            assert all(s[k] is None or _num(s[k]) for k in ("max", "p99", "median"))
            for mode in ("trajectory", "step"):
                assert all(v is None or _num(v) for v in e["samples"][mode][point])
        for key in ("findings", "theta_findings", "limited", "lost_update", "failed_values", "failed_cases"):
            assert isinstance(e[key], int), key
        assert 0 <= e["limited_share"] <= 1 and 0 <= e["lost_update_share"] <= 1
        assert _num(e["max_ratio"])
        for nodeid, t in e["tests"].items():
            assert isinstance(nodeid, str) and isinstance(t["cases"], int)
            assert t["outcome"] in (None, "passed", "failed", "xfailed", "xpassed", "skipped")
        if e["worst"] is not None:
            w = e["worst"]
            assert _num(w["ratio"]) and _num(w["ulp"]) and isinstance(w["nodeid"], str)
            assert w["reproduction"].startswith("from conformance.replay import replay")


def test_json_schema_of_real_cases():
    from conformance import backends

    impl = backends.load("numpy")
    c = DriftCollector(backend_obj=impl, run={"args": [], "backend": "numpy", "hypothesis_profile": None})
    for lr in (0.5, 1e-3):
        data = _case(lr=lr)
        c.add(NODE, "numpy", "for-loop", data, check(data, impl.run(for_backend(data, "for-loop"))))
    c.set_target("numpy", target_environment("numpy", impl))
    d = json.loads(c.to_json())
    check_schema(d)
    e = d["entries"][0]
    assert e["cases"] == 2 and e["ulp"]["last"]["n"] == 2
    # the worst input replays
    ns = {}
    exec(e["worst"]["reproduction"].replace("replay(", "report = replay(quiet=True, ", 1), ns)  # noqa: S102
    assert ns["report"].ok


def test_json_is_strict_with_infinities():
    c = DriftCollector()
    c.add(NODE, "numpy", "for-loop", _case(), _report(0.1, 1.0, extra=[_finding(2, math.inf, math.inf, "fail")]))
    text = c.to_json()
    d = json.loads(text)  # no Infinity/NaN tokens: allow_nan=False would have raised
    e = d["entries"][0]
    assert e["max_ratio"] == "inf" and e["ulp"]["last"]["max"] == "inf"
    assert DriftCollector.from_json(text).entries[("numpy", "sgd", "for-loop", "float32")].max_ratio == math.inf


# --------------------------------------------------------------------------- the pytest wiring, with and without xdist

@pytest.fixture(scope="module")
def xdist_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("drift") / "tmp.json"
    args = ["-m", "pytest", "conformance/test_conformance.py", "--backend=numpy", "--spec", "sgd", "--spec", "adam", "-k", "float32",
            "--hypothesis-profile=ci", "-n", "2", f"--drift-report={out}",
            "-p", "tests.drift_fast_plugin", "-p", "no:cacheprovider", "-q"]
    proc = _run(args)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    collected = _run(["-m", "pytest", "conformance/test_conformance.py", "--backend=numpy", "--spec", "sgd", "--spec", "adam",
                      "-k", "float32", "--co", "-q", "-p", "no:cacheprovider"])
    ids = [line.strip() for line in collected.stdout.splitlines() if "::" in line]
    return json.loads(out.read_text()), ids, proc.stdout


def test_xdist_aggregation(xdist_report):
    d, ids, stdout = xdist_report
    check_schema(d)
    assert len(ids) == 4
    assert d["run"]["xdist_workers"] == 2 and d["run"]["hypothesis_profile"] == "ci"
    assert sorted(d["sources"]) == ["gw0", "gw1"]
    seen = {}
    for e in d["entries"]:
        assert (e["backend"], e["path"], e["dtype"]) == ("numpy", "for-loop", "float32")
        assert e["cases"] > 0
        assert sum(t["cases"] for t in e["tests"].values()) == e["cases"]
        for nodeid, t in e["tests"].items():
            assert nodeid not in seen, f"{nodeid} counted twice"
            seen[nodeid] = t
    assert sorted(seen) == sorted(ids), "every parametrized test id once"
    assert all(t["cases"] > 0 and t["outcome"] in ("passed", "failed", "xfailed", "xpassed") for t in seen.values())
    assert {t["worker"] for t in seen.values()} == {"gw0", "gw1"}, "tests of both workers reached the controller"
    assert {e["optimizer"] for e in d["entries"]} == {"sgd", "adam"}
    assert "drift report: numpy" in stdout and "max err/bound" in stdout


def test_without_xdist_matches_xdist(xdist_report, tmp_path):
    """Serial, with xdist disabled: the hooks still work, and the derandomized cases count the same."""
    d_x, _, _ = xdist_report
    out = tmp_path / "serial.json"
    proc = _run(["-m", "pytest", "conformance/test_conformance.py", "--backend=numpy", "--spec", "sgd", "-k", "float32",
                 "--hypothesis-profile=ci", "-p", "no:xdist", "-p", "tests.drift_fast_plugin",
                 "-p", "no:cacheprovider", f"--drift-report={out}", "-q"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    d = json.loads(out.read_text())
    check_schema(d)
    assert d["sources"] == [] and d["run"]["xdist_workers"] is None
    (serial,) = d["entries"]
    (parallel,) = [e for e in d_x["entries"] if e["optimizer"] == "sgd"]
    assert {k: t["cases"] for k, t in serial["tests"].items()} == {k: t["cases"] for k, t in parallel["tests"].items()}
    assert serial["ulp"] == parallel["ulp"] and serial["max_ratio"] == parallel["max_ratio"]
    assert "drift report: numpy" in proc.stdout


# --------------------------------------------------------------------------- reports/drift_study.py

def test_drift_module_writes_plot_and_report(tmp_path):
    proc = _run(["-m", "reports.drift_study", "--backend", "torch-cpu", "--steps", "20", "--optimizers", "sgd", "adam",
                 "--dtypes", "float32", "--jobs", "1", "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    png = tmp_path / "drift.png"
    assert png.exists() and png.stat().st_size > 1024
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "report.md").read_text()
    assert "](drift.png)" in md
    assert "| sgd | float32 |" in md and "| adam | float32 |" in md
    assert "[ 1/2]" in proc.stderr and "elapsed" in proc.stderr  # progress lines
    d = json.loads((tmp_path / "trajectories.json").read_text())
    assert [(r["optimizer"], len(r["ulp"])) for r in d["results"]] == [("sgd", 20), ("adam", 20)]
    assert all(r["summary"]["verdict"] == "pass" for r in d["results"])
