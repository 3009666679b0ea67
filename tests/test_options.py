"""The conformance suite's command line, run as a user runs it: ``python -m pytest conformance ...``.

Bad option values are usage errors (exit status 4) naming the bad value and the known ones, never a traceback
from deep inside; a backend asked for by name that cannot run here is one too; and the Hypothesis profile is
the one asked for, else Hypothesis's own choice (``ci`` where it detects CI).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import spec
from conformance.backends.torch_backend import cuda_available

ROOT = Path(__file__).resolve().parents[1]
KNOWN = f"known: {', '.join([*spec.OPTIMIZERS, *spec.OBSERVED_OPTIMIZERS, *spec.CLOSURE_OPTIMIZERS])}; dialects: adam@keras"  # registry order

try:  # the variables Hypothesis reads to detect CI; each must be unset for a run "outside CI"
    from hypothesis._settings import _CI_VARS
except ImportError:  # a later Hypothesis: at least the generic one
    _CI_VARS = {"CI": None, "GITHUB_ACTIONS": "true"}


def run(args: list, ci: bool = False) -> subprocess.CompletedProcess:
    """``python -m pytest conformance ARGS`` from the project root, single process, in or outside CI."""
    env = {k: v for k, v in os.environ.items() if k not in _CI_VARS and k not in ("PYTEST_ADDOPTS",
                                                                                   "PYTEST_XDIST_WORKER")}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "pytest", "conformance", "-p", "no:xdist", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


USAGE_ERRORS = {
    "unknown --spec": (["--spec", "bogus"], "--spec 'bogus': no optimizer spec named 'bogus'; " + KNOWN),
    "unknown --optimizer spec": (["--backend=torch-cpu", "--optimizer", "bogus=torch.optim:Adam"],
                                 "--optimizer 'bogus=torch.optim:Adam': no optimizer spec named 'bogus'; " + KNOWN),
    "--optimizer module missing": (["--backend=torch-cpu", "--optimizer", "adam=nomodule:X"],
                                   "--optimizer adam=nomodule:X: bad class spec 'nomodule:X': cannot import module "
                                   "'nomodule'"),
    "--optimizer class missing": (["--backend=torch-cpu", "--optimizer", "adam=torch.optim:Nothing"],
                                  "--optimizer adam=torch.optim:Nothing: bad class spec 'torch.optim:Nothing': "
                                  "module 'torch.optim' has no attribute 'Nothing'"),
    "unknown --hyper-map spec": (["--backend=torch-cpu", "--optimizer", "adam=torch.optim:Adam",
                                  "--hyper-map", "bogus:lr=learning_rate"],
                                 "--hyper-map 'bogus:lr=learning_rate': no optimizer spec named 'bogus'; " + KNOWN),
    "--hold unknown hyperparameter": (["--backend=torch-cpu", "--optimizer", "adam=torch.optim:Adam",
                                       "--hold", "adam:bogus=1"],
                                      "--hold 'adam:bogus=1': adam has no hyperparameter 'bogus'; known: lr, "),
    "--hold flag not a bool": (["--backend=torch-cpu", "--optimizer", "adam=torch.optim:Adam",
                                "--hold", "adam:maximize=1"],
                               "--hold 'adam:maximize=1': maximize is a flag: true or false"),
    "unknown --hyper-map hyperparameter": (["--backend=torch-cpu", "--optimizer", "adam=torch.optim:Adam",
                                            "--hyper-map", "adam:epsilon=eps"],
                                           "--hyper-map 'adam:epsilon=eps': adam has no hyperparameter 'epsilon'; "
                                           "known: lr, beta1, beta2, eps,"),
    "unknown --backend": (["--backend=bogus"], "unknown backend 'bogus': use numpy, torch-cpu, torch-cuda, "
                                               "optax or module:attr"),
    "--backend module missing": (["--backend=nonexistent.module:attr"],
                                 "--backend=nonexistent.module:attr: cannot load 'attr' from 'nonexistent.module'"),
}


@pytest.mark.parametrize("args, message", list(USAGE_ERRORS.values()), ids=list(USAGE_ERRORS))
def test_bad_option_is_a_usage_error_that_names_the_known_values(args, message):
    r = run([*args, "--collect-only", "-q"])
    out = r.stdout + r.stderr
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert f"ERROR: {message}" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out


def test_a_known_dialect_name_is_accepted():
    r = run(["--spec", "adam@keras", "--collect-only", "-q"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test_trajectory[adam@keras" in r.stdout


@pytest.mark.skipif(cuda_available(), reason="CUDA is available here: --backend=torch-cuda runs")
def test_torch_cuda_without_cuda_is_a_usage_error_not_a_run_of_skips():
    r = run(["--backend=torch-cuda", "--spec", "sgd", "--collect-only", "-q"])
    out = r.stdout + r.stderr
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert "ERROR: --backend=torch-cuda cannot run here: CUDA is not available: torch.cuda.is_available() is " \
           "False" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out


def _profile_header(r: subprocess.CompletedProcess) -> str:
    """The Hypothesis plugin's header line: the profile active once pytest is configured, and its settings."""
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("hypothesis profile ")]
    assert len(lines) == 1, r.stdout
    return lines[0]


@pytest.mark.parametrize("ci, option, expected", [
    (True, None, "hypothesis profile 'ci' -> "),
    (False, None, "hypothesis profile 'default' -> "),
    (True, "default", "hypothesis profile 'default' -> "),
    (False, "ci", "hypothesis profile 'ci' -> "),
    (True, "default-triage", "hypothesis profile 'default-triage' -> "),
])
def test_the_profile_is_the_options_else_hypothesis_ci_detection(ci, option, expected):
    args = ["--spec", "sgd", "--collect-only", "-v"] + ([f"--hypothesis-profile={option}"] if option else [])
    header = _profile_header(run(args, ci=ci))
    assert header.startswith(expected), header
    name = option or ("ci" if ci else "default")
    derandomized = name == "ci"
    assert ("derandomize=True" in header) == derandomized, header
    assert ("database=None" in header) == derandomized, header
    assert f"max_examples={6 if derandomized else 40}," in header + ",", header
    assert ("phases=" in header) == name.endswith("triage"), header  # triage drops shrinking; ci/default don't


def test_a_plain_run_in_ci_is_derandomized_and_bounded_and_the_report_says_so(tmp_path):
    """What a CI job that runs ``pytest conformance`` without the option gets, as the drift report records it."""
    path = tmp_path / "drift.json"
    r = run(["--backend=numpy", "--spec", "sgd", "-k", "same_inputs and float64", "-q", f"--drift-report={path}"],
            ci=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout
    info = json.loads(path.read_text())["run"]
    assert info["hypothesis_profile"] == "ci"
    assert info["hypothesis_settings"]["derandomize"] is True
    assert info["hypothesis_settings"]["max_examples"] == 6
