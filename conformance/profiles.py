"""Hypothesis settings profiles of the conformance suite.

* ``ci``: derandomized and bounded, so CI is reproducible and fast.
* ``default``: random, 40 examples per test; the profile for day-to-day runs.
* ``hunt``: long campaigns; ``target()`` climbs toward the worst error ratio.
* ``triage``, ``default-triage``: ``ci`` and ``default`` without shrinking.

Select one with ``--hypothesis-profile=NAME``.  Without the option the active
profile is Hypothesis's choice: ``ci`` where it detects CI (the ``CI``
environment variable and the vendors' own, ``hypothesis._settings.is_in_ci``),
``default`` elsewhere.  ``ci`` and ``default`` replace Hypothesis's built-in
profiles of those names, as its documentation says to ("Built-in profiles" in
``hypothesis.settings``): registering the active profile's name takes effect at
once, so nothing here loads a profile.  Every profile states all the settings
it relies on on top of Hypothesis's built-in ``default``, so none inherits from
whichever profile happened to be active when this module was imported.
Failing examples are kept in the local example database (``.hypothesis/``,
except under ``ci`` and ``triage``) and replayed first next time.
"""
import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

# Hypothesis's own default profile, captured before this module replaces it.
_BUILTIN_DEFAULT = settings.get_profile("default")
# function_scoped_fixture: the tests' ``req`` fixture is the item's pytest request (plugin.py says why it is a
# fixture); it holds no per-example state, so sharing it between a test's examples is what the tests want.
# large_base_example: a branch case has a group per root of each hyperparameter boundary at each step
# (conformance/branches.py), so AdEMAMix's two warm-up thresholds t < T make even the simplest case ~40 groups.
_common = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture, HealthCheck.large_base_example])
_fixed = dict(derandomize=True, database=None)  # the same examples on every run, nothing stored

settings.register_profile("ci", _BUILTIN_DEFAULT, max_examples=6, **_fixed, **_common)
settings.register_profile("default", _BUILTIN_DEFAULT, max_examples=40, derandomize=False, **_common)
settings.register_profile("hunt", _BUILTIN_DEFAULT, max_examples=2000, derandomize=False,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                          **_common)
# For triage: like ci (or default) but reports the first failing example without shrinking it; with the same
# --hypothesis-seed, default-triage draws the examples default draws.
settings.register_profile("triage", settings.get_profile("ci"), phases=[Phase.explicit, Phase.generate])
settings.register_profile("default-triage", settings.get_profile("default"),
                          phases=[Phase.explicit, Phase.generate])

# For fuzzing campaigns (python -m conformance fuzz, README "Campaigns"): the default profile's settings with the
# example database in $CONFORMANCE_DATABASE when set (a directory that several machines can share), so every
# finding of every machine replays first under plain pytest with this profile.
_campaign_db = os.environ.get("CONFORMANCE_DATABASE")
settings.register_profile("campaign", settings.get_profile("default"),
                          **({"database": DirectoryBasedExampleDatabase(_campaign_db)} if _campaign_db else {}))
# Only the examples stored in that database, nothing generated: replays a campaign's findings, and nothing else.
settings.register_profile("campaign-replay", settings.get_profile("campaign"), phases=[Phase.explicit, Phase.reuse])
