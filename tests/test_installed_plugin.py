"""The installed package is a pytest plugin: ``pytest --pyargs conformance`` runs the suite in any directory.

Builds a wheel of this checkout, installs it (without dependencies) into a fresh virtual environment that sees the
running interpreter's site-packages (torch, pytest, Hypothesis come from there) but not this checkout, and runs
the suite from an empty directory, as a user of the package would.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER",
                                                            "PYTEST_PLUGINS", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a fresh venv with the wheel installed, an empty directory to run in)."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                  "-w", tmp / "dist", ROOT], cwd=tmp)
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = list((tmp / "dist").glob("optimizer_conformance-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp)
                .stdout.strip())
    # The running environment's packages, as plain paths (no .pth of theirs runs: an editable install of this
    # checkout there stays invisible).
    parent = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "zz_parent_environment.pth").write_text("\n".join(parent) + "\n")
    install = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", site,
                    wheels[0]], cwd=tmp)
    assert install.returncode == 0, install.stdout + install.stderr
    work = tmp / "elsewhere"
    work.mkdir()
    where = _run([python, "-c", "import conformance, spec, reference, reports; print(conformance.__file__)"],
                 cwd=work)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), f"conformance imported from {where.stdout}"
    return python, work


def _passed(proc) -> int:
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert "failed" not in last and "error" not in last, proc.stdout[-3000:] + proc.stderr[-3000:]
    return int(last.split(" passed")[0].split()[-1]) if " passed" in last else 0


def test_pytest_pyargs_runs_the_suite_from_the_wheel(installed):
    python, work = installed
    proc = _run([python, "-m", "pytest", "--pyargs", "conformance", "--backend=numpy", "--hypothesis-profile=ci",
                 "--spec", "sgd", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"], cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _passed(proc) > 0
    assert "drift report: numpy" in proc.stdout  # the plugin's terminal summary


def test_naming_the_plugin_as_well_is_harmless(installed):
    """``-p conformance.plugin`` with the entry point loaded: no "Plugin already registered"."""
    python, work = installed
    proc = _run([python, "-m", "pytest", "--pyargs", "conformance.test_conformance", "-p", "conformance.plugin",
                 "--backend=numpy", "--hypothesis-profile=ci", "--spec", "sgd", "-k", "float64", "-q",
                 "-p", "no:cacheprovider", "-p", "no:xdist"], cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _passed(proc) > 0


def test_another_projects_tests_are_left_alone(installed, tmp_path):
    """With the plugin loaded everywhere (by the entry point: no conftest of ours here), a foreign test with fixtures named optimizer/path/dtype is not
    parametrized by it."""
    python, _ = installed
    (tmp_path / "test_mine.py").write_text(
        "import pytest\n"
        "@pytest.fixture\ndef optimizer(): return 'mine'\n"
        "@pytest.fixture\ndef path(): return 'p'\n"
        "@pytest.fixture\ndef dtype(): return 'd'\n"
        "def test_mine(optimizer, path, dtype):\n    assert (optimizer, path, dtype) == ('mine', 'p', 'd')\n")
    proc = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "test_mine.py",
                 "--backend=numpy"], cwd=tmp_path)  # the option exists here: the entry point loaded the plugin
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_audit_command_from_the_wheel(installed):
    """``python -m conformance audit`` works from the installed package (torch.optim.SGD as sgd: it conforms)."""
    pytest.importorskip("torch")
    python, work = installed
    proc = _run([python, "-m", "conformance", "audit", "torch.optim:SGD", "--as", "sgd", "--dtype", "float64",
                 "--profile", "ci"], cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("verdict: updates conform; defaults conform;")
