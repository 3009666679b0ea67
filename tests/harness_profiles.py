"""A pytest plugin for ``tests/test_harness_catches_bugs.py``: the ``ci`` profile without shrinking.

``ci-noshrink`` is ``conformance.profiles``'s ``ci`` (derandomized, 6 examples,
no database) with the shrink and explain phases dropped.  Generation is the
same, so exactly the examples ``ci`` tries are tried and a bug ``ci`` catches
is caught; only the minimisation of the failing example is skipped, which is
most of the time of a failing run (about 40 of 47 CPU seconds for one broken
Adam).  Load it with ``-p tests.harness_profiles --hypothesis-profile=ci-noshrink``.
"""
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import Phase, settings

from conformance import profiles  # noqa: F401 - registers "ci"

settings.register_profile(
    "ci-noshrink", settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
)


ROOT = Path(__file__).resolve().parents[1]


def run_pytest(args: list, profile: str = "ci") -> subprocess.CompletedProcess:
    """``python -m pytest ARGS --hypothesis-profile=PROFILE`` from the project root, as a user runs it.

    The parent run's xdist and PYTEST_ADDOPTS settings are not inherited; ``ci-noshrink`` loads this plugin.
    """
    cmd = [sys.executable, "-m", "pytest", *args, f"--hypothesis-profile={profile}", "-p", "no:cacheprovider"]
    if profile == "ci-noshrink":
        cmd += ["-p", "tests.harness_profiles"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
