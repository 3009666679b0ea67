"""A pytest plugin for ``tests/test_deviations_scope.py``: adds a known deviation of torch's NAdam that no test
can match (a dtype no backend offers), to check that the collection hook warns about it."""
from conformance import known_deviations as kd

STALE = kd.KnownDeviation(
    id="stale-nadam-entry", implementation=kd.torch_optim("NAdam"), versions=">=2", spec="nadam",
    dtype="float128", tests=("test_trajectory",), reason="matches nothing")


def pytest_configure(config):
    kd.KNOWN_DEVIATIONS = kd.KNOWN_DEVIATIONS + (STALE,)
