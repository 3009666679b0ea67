"""From a checkout: load the suite's pytest plugin (``conformance/plugin.py``) unless it is loaded already.

It is always registered under its module's name, ``conformance.plugin``: an installed package (``pip install -e
.`` or a wheel) loads it through its ``pytest11`` entry point of that name, ``-p conformance.plugin`` imports it
under that name (and does nothing when the entry point has).  Registering the module a second time would be
"Plugin already registered" (or every option added twice), so this registers it only when neither happened, and
not when ``-p no:conformance.plugin`` blocked it.  ``pytest_addhooks`` is the first hook pytest calls on a conftest;
the plugin's ``pytest_addoption`` and ``pytest_configure`` still run, being historic hooks.
"""
import gc

from . import plugin

NAME = plugin.__name__  # "conformance.plugin": the entry point's name too


def pytest_addhooks(pluginmanager):
    if not (pluginmanager.is_registered(plugin) or pluginmanager.has_plugin(NAME)
            or pluginmanager.is_blocked(NAME)):
        pluginmanager.register(plugin, NAME)


# A run keeps hundreds of thousands of objects alive (strategies, compiled programs, scalar caches) and makes
# millions of short-lived ones per test (mpmath numbers, Hypothesis's choices); with Python's default thresholds
# (700, 10, 10) enough of the short-lived survive two young collections to set off a full collection every few
# tests: measured, about a seventh of a worker's time.  A larger young generation lets them die there.
gc.set_threshold(50_000, 20, 100)
