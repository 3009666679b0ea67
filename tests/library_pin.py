"""The pin of a third-party library whose findings a test file reproduces."""
from __future__ import annotations

from importlib import metadata

import pytest


def pinned(distribution: str, version: str, label: str | None = None):
    """An autouse fixture that fails every test of its module unless ``distribution`` is at ``version``: the
    findings were measured there, and another version needs the audit rerun and the record updated."""

    @pytest.fixture(autouse=True)
    def _pinned():
        installed = metadata.version(distribution)
        assert installed == version, (
            f"{label or distribution} {installed} installed; these findings were measured on {version}: rerun the "
            "audit (docs/measured/third-party.md) and update the pin")

    return _pinned
