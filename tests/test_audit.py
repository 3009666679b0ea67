"""``python -m conformance audit``: a verdict per concern, the exit status, the HTML report.

Each case runs the real command in a subprocess on a class of ``tests/broken_optimizers.py``, restricted to
float64 and the ``ci`` profile to stay fast.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def audit(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, "-m", "conformance", "audit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def verdict_of(stdout: str, label: str) -> str:
    m = re.search(rf"^  {re.escape(label)}\s+(conforms|departs|known deviation|not checked)", stdout, re.M)
    assert m, f"no verdict line for {label!r} in:\n{stdout}"
    return m.group(1)


def test_exact_updates_but_lr_below_zero_accepted(tmp_path):
    """Updates conform; validation departs, with the reproduction; exit 1; the report is self-contained."""
    proc = audit("tests.broken_optimizers:UncheckedLrSGD", "--as", "sgd", "--dtype", "float64", "--profile", "ci",
                 "--report", str(tmp_path / "report"), "--drift-steps", "8")
    out = proc.stdout
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert verdict_of(out, "update semantics: sgd custom float64") == "conforms"
    assert verdict_of(out, "validation") == "departs"
    for label in ("defaults", "maximize", "None gradients", "several tensors", "save/restore", "determinism"):
        assert verdict_of(out, label) == "conforms", label
    assert verdict_of(out, "update semantics: sgd custom float32") == "not checked"
    assert "dtype float32 not selected" in out
    assert verdict_of(out, "schedules") == "not checked"
    headline = out.strip().splitlines()[-1]
    assert headline.startswith("verdict: updates conform;") and "validation departs" in headline
    assert "lr=-0.001 outside" in out and "Reproduce with:" in out
    assert "replay(backend='torch-cpu', optimizer='sgd', path='custom'" in out
    assert "[  1/" in proc.stderr and "sgd custom float64" in proc.stderr  # progress
    page = (tmp_path / "report" / "report.html").read_text()
    assert "validation" in page and "departs" in page and "lr=-0.001 outside" in page
    assert not re.search(r"""(src|href)=['"]?(https?:|//)""", page), "the page must not load anything"
    assert "<style>" in page
    try:
        import matplotlib  # noqa: F401
        assert "data:image/png;base64," in page
    except ImportError:
        assert "matplotlib is not installed" in page
    for name in ("audit.json", "drift.json"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_faithful_class_conforms():
    proc = audit("tests.broken_optimizers:FaithfulSGD", "--as", "sgd", "--dtype", "float64", "--profile", "ci")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "departs" not in proc.stdout
    assert verdict_of(proc.stdout, "update semantics: sgd custom float64") == "conforms"
    assert verdict_of(proc.stdout, "validation") == "conforms"


def test_wrong_update_departs_as_an_update():
    """A class whose update is wrong departs under update semantics, with a replay() call.

    ``triage`` is ``ci``'s examples without shrinking: the departure is found by the same examples, and shrinking
    a failing trajectory took about 400 of this test's 404 s (session 8's --durations).
    """
    proc = audit("tests.broken_optimizers:DampenedFirstStepSGD", "--as", "sgd", "--dtype", "float64",
                 "--profile", "triage", "--pytest-arg=-k", "--pytest-arg=test_trajectory or test_single_steps")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert verdict_of(proc.stdout, "update semantics: sgd custom float64") == "departs"
    assert "first departure: step" in proc.stdout and "replay(" in proc.stdout
    assert verdict_of(proc.stdout, "validation") == "not checked"


@pytest.mark.parametrize("args, message", [
    (["tests.broken_optimizers:FaithfulSGD"], "needs --as"),
    (["tests.broken_optimizers:FaithfulSGD", "--as", "sgdd"], "sgd"),
    (["tests.broken_optimizers:FaithfulSGD", "--as", "sgd", "--dtype", "float8"], "float8"),
    (["tests.broken_optimizers:FaithfulSGD", "--as", "sgd", "--profile", "nope"], "unknown Hypothesis profile"),
])
def test_usage_errors(args, message):
    proc = audit(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_verdict_words():
    from reports.audit import headline, split_failure

    rows = [{"concern": "updates", "verdict": "conforms"}, {"concern": "updates", "verdict": "not checked",
                                                          "deselected": True},
            {"concern": "validation", "verdict": "departs"}, {"concern": "save/restore", "verdict": "not checked"}]
    assert headline(rows) == "updates conform; validation departs; save/restore not checked"
    head, repro = split_failure("AssertionError: x departs\n\nReproduce with:\nreplay(1)\n\n# other\nreplay(2)")
    assert head == "x departs" and repro == "replay(1)\n\n# other\nreplay(2)"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium (Debian: apt-get install chromium) "
                                                              "is not installed: the report is not rendered")
def test_report_renders_in_headless_chromium(tmp_path):
    """The documented check (.ci/screenshot-report) turns a report into a PNG of the page."""
    from reports.audit_report import render

    audit_data = {"exit_status": 1, "backend": "torch-cpu", "target": "m:C", "as": "sgd", "title": "t",
                  "headline": "updates conform; validation departs",
                  "concerns": [{"label": "validation", "verdict": "departs", "first_departure": "lr=-1 accepted",
                                "departures": 1}], "tests": {}}
    page = tmp_path / "report.html"
    page.write_text(render(audit_data, None, (None, "not drawn")))
    png = tmp_path / "shot.png"
    proc = subprocess.run([str(ROOT / ".ci" / "screenshot-report"), str(page), str(png)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
