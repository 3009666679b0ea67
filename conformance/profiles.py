"""Hypothesis settings profiles of the conformance suite.

* ``ci``: derandomized and bounded, so CI is reproducible and fast.
* ``default``: random, 40 examples per test; the profile for day-to-day runs.
* ``hunt``: long campaigns; ``target()`` climbs toward the worst error ratio.
Select one with ``--hypothesis-profile=NAME``.  Failing examples are kept in
the local example database (``.hypothesis/``) and replayed first next time.
"""
import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                     HealthCheck.data_too_large])

settings.register_profile("ci", max_examples=6, derandomize=True, database=None, print_blob=True, **_common)
settings.register_profile("default", max_examples=40, print_blob=True, **_common)
settings.register_profile("hunt", max_examples=2000, print_blob=True,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                          **_common)
# For triage: like ci (or default) but reports the first failing example without shrinking it; with the same
# --hypothesis-seed, default-triage draws the examples default draws.
settings.register_profile("triage", max_examples=6, derandomize=True, database=None, print_blob=True,
                          phases=[Phase.explicit, Phase.generate], **_common)
settings.register_profile("default-triage", settings.get_profile("default"),
                          phases=[Phase.explicit, Phase.generate])

# For fuzzing campaigns (python -m conformance fuzz, README "Campaigns"): the default profile's settings with the
# example database in $CONFORMANCE_DATABASE when set (a directory that several machines can share), so every
# finding of every machine replays first under plain pytest with this profile.
_campaign_db = os.environ.get("CONFORMANCE_DATABASE")
settings.register_profile("campaign", settings.get_profile("default"),
                          **({"database": DirectoryBasedExampleDatabase(_campaign_db)} if _campaign_db else {}))
