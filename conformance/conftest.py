"""pytest options and parametrization of the conformance suite.

    pytest conformance --backend=numpy|torch-cpu|torch-cuda|module:attr
                       [--spec NAME]... [--optimizer SPEC=module:Class]...
                       [--hyper-map SPEC:ours=theirs]... [--hypothesis-profile=ci|default|hunt]
"""
from __future__ import annotations

import pytest
from hypothesis import settings

import spec as spec_pkg

from . import profiles  # noqa: F401 - registers the Hypothesis profiles
from . import backends as backend_registry
from .known_deviations import find as find_deviation

settings.load_profile("default")


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--backend", default="numpy",
                    help="numpy, torch-cpu, torch-cuda, or module:attr naming a backend object")
    group.addoption("--spec", action="append", default=[], help="only this optimizer spec (repeatable)")
    group.addoption("--optimizer", action="append", default=[], metavar="SPEC=module:Class",
                    help="audit a third-party class with torch.optim's API as SPEC (repeatable); only those run")
    group.addoption("--hyper-map", action="append", default=[], metavar="SPEC:ours=theirs",
                    help="rename a hyperparameter for an --optimizer class (repeatable)")


def _overrides(config) -> dict:
    out = {}
    for item in config.getoption("--optimizer"):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise pytest.UsageError(f"--optimizer {item!r}: expected SPEC=module:Class")
        spec_pkg.get(name)
        out[name] = target
    return out


def _hyper_map(config) -> dict:
    out = {}
    for item in config.getoption("--hyper-map"):
        name, _, pair = item.partition(":")
        ours, _, theirs = pair.partition("=")
        if not (name and ours and theirs):
            raise pytest.UsageError(f"--hyper-map {item!r}: expected SPEC:ours=theirs")
        out.setdefault(name, {})[ours] = theirs
    return out


@pytest.fixture(scope="session")
def backend(request):
    return request.config._conformance_backend


def pytest_configure(config):
    if not hasattr(config, "getoption") or config.getoption("--backend", None) is None:
        return
    overrides = _overrides(config)
    classes = {}
    for name, target in overrides.items():
        try:
            classes[name] = backend_registry.load_class(target)
        except ValueError as e:
            raise pytest.UsageError(str(e))
    try:
        config._conformance_backend = backend_registry.load(
            config.getoption("--backend"), overrides=classes or None, hyper_map=_hyper_map(config) or None)
    except ValueError as e:
        raise pytest.UsageError(str(e))
    config._conformance_overrides = overrides
    config._conformance_stale = []


def selected_specs(config) -> list:
    names = list(config.getoption("--spec")) or list(spec_pkg.OPTIMIZERS)
    overrides = getattr(config, "_conformance_overrides", {})
    if overrides:
        names = [n for n in names if n in overrides]
    for n in names:
        spec_pkg.get(n)  # a clear error for an unknown name
    return names


def combos(config):
    """(optimizer, path, dtype) params, with a reason-carrying skip where the backend has none."""
    impl = config._conformance_backend
    name = config.getoption("--backend")
    out = []
    for opt in selected_specs(config):
        paths = list(impl.paths(opt))
        if not paths:
            why = getattr(impl, "skip_reason", None) or f"backend {name} does not implement {opt}"
            out.append(pytest.param(opt, "-", "-", marks=pytest.mark.skip(reason=why), id=f"{opt}"))
            continue
        for path in paths:
            for dtype in impl.dtypes(opt, path):
                marks = []
                dev = find_deviation(name, opt, path, dtype)
                if dev:
                    marks.append(pytest.mark.xfail(reason=f"known deviation: {dev.reason}", strict=False))
                out.append(pytest.param(opt, path, dtype, marks=marks, id=f"{opt}-{path}-{dtype}"))
    return out


def pytest_generate_tests(metafunc):
    if {"optimizer", "path", "dtype"} <= set(metafunc.fixturenames):
        metafunc.parametrize(("optimizer", "path", "dtype"), combos(metafunc.config))


def pytest_runtest_logreport(report):
    if report.when == "call" and getattr(report, "wasxfail", None) and report.passed:
        report.sections.append(("stale known deviation", report.wasxfail))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    xpassed = terminalreporter.stats.get("xpassed", [])
    if xpassed:
        terminalreporter.section("stale known deviations")
        for rep in xpassed:
            terminalreporter.write_line(f"{rep.nodeid} passed although a known deviation covers it: "
                                        "check conformance/known_deviations.py")
