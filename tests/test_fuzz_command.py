"""``python -m conformance fuzz`` and the package's command line: clear errors; with HypoFuzz, a finding stored in
the campaign database replays under plain pytest."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(args, env_extra=None, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_unknown_command_lists_the_known_ones():
    proc = run(["-m", "conformance", "audti"])
    assert proc.returncode == 2 and "known commands are audit, fuzz" in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("hypofuzz") is not None, reason="HypoFuzz is installed")
def test_fuzz_without_hypofuzz_says_how_to_get_it():
    proc = run(["-m", "conformance", "fuzz", "--minutes", "0.1"])
    assert proc.returncode != 0 and "pip install hypofuzz" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("hypofuzz") is None, reason="HypoFuzz is not installed (the fuzz extra)")
def test_a_fuzzing_finding_replays_with_plain_pytest(tmp_path):
    selection = ["conformance", "--backend=torch-cpu", "--optimizer", "sgd=tests.broken_optimizers:DampenedFirstStepSGD",
                 "--spec", "sgd", "-k", "test_trajectory and float64", "--hypothesis-profile=campaign", "-p", "no:xdist"]
    db = {"CONFORMANCE_DATABASE": str(tmp_path / "db")}
    fuzz = run(["-m", "conformance", "fuzz", "-n", "1", "--minutes", "3", "--", *selection], db)
    assert fuzz.returncode == 1 and "1 with a stored failure" in fuzz.stdout, fuzz.stdout + fuzz.stderr
    # campaign-replay generates nothing: a failure can only come from the database
    replay = [s.replace("=campaign", "=campaign-replay") for s in selection] + ["-q", "-p", "no:cacheprovider"]
    proc = run(["-m", "pytest", *replay], db)
    assert proc.returncode == 1 and "Reproduce with:" in proc.stdout, proc.stdout[-3000:]
    empty = run(["-m", "pytest", *replay], {"CONFORMANCE_DATABASE": str(tmp_path / "empty")})
    assert empty.returncode == 0, empty.stdout[-3000:]
