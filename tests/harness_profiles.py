"""A pytest plugin for ``tests/test_harness_catches_bugs.py``: the ``ci`` profile without shrinking.

``ci-noshrink`` is ``conformance.profiles``'s ``ci`` (derandomized, 6 examples,
no database) with the shrink and explain phases dropped.  Generation is the
same, so exactly the examples ``ci`` tries are tried and a bug ``ci`` catches
is caught; only the minimisation of the failing example is skipped, which is
most of the time of a failing run (about 40 of 47 CPU seconds for one broken
Adam).  Load it with ``-p tests.harness_profiles --hypothesis-profile=ci-noshrink``.
"""
from hypothesis import Phase, settings

from conformance import profiles  # noqa: F401 - registers "ci"

settings.register_profile(
    "ci-noshrink", settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
)
