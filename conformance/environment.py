"""The execution target: what a run's results were computed on (CPU, versions, the backend's own probe).

Kept apart from the backends and the reports so that both can use it without importing each other.
"""
from __future__ import annotations

import os
import platform

import ml_dtypes
import numpy as np


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def target_environment(backend_name: str, backend_obj=None) -> dict:
    """What the results were computed on: the backend's ``environment()`` where it has one (for a backend
    named in a merged report but not run here, ``backend_obj`` is None and only this machine is described)."""
    env = None
    fn = getattr(backend_obj, "environment", None)
    if callable(fn):
        try:
            env = dict(fn())
        except Exception as exc:  # a report must not fail on a diagnostic
            env = {"environment_error": f"{type(exc).__name__}: {exc}"}
    if env is None:
        env = {}
    env.setdefault("ml_dtypes", getattr(ml_dtypes, "__version__", None))
    env.setdefault("python", platform.python_version())
    env.setdefault("numpy", np.__version__)
    env.setdefault("device", "cpu")
    env.setdefault("device_name", cpu_name())
    env.setdefault("cpu_count", os.cpu_count())
    env["platform"] = platform.platform()
    env["backend"] = backend_name
    return env
