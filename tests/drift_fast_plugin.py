"""A pytest plugin for tests/test_drift_report.py: the ``ci`` Hypothesis profile without shrinking.

The drift-report test runs the conformance suite under xdist only to check
how the report aggregates; a failing case would otherwise spend up to five
minutes shrinking (Hypothesis's limit), which adds nothing to that check.
Loaded with ``-p tests.drift_fast_plugin`` (xdist passes it on to the workers).
"""
import pytest
from hypothesis import Phase, settings


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # conformance/plugin.py (imported before any pytest_configure) has registered "ci";
    # re-register it without the shrink phase before Hypothesis's plugin loads it.
    base = settings.get_profile("ci")
    settings.register_profile("ci", parent=base,
                              phases=[p for p in base.phases if p not in (Phase.shrink, Phase.explain)])
