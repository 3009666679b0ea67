"""The conformance suite's pytest plugin: options, fixtures, parametrization, the drift report.

    pytest --pyargs conformance --backend=numpy|torch-cpu|torch-cuda|module:attr      (installed package)
    pytest conformance --backend=...                                                (from a checkout)
                       [--spec NAME]... [--optimizer SPEC=module:Class]...
                       [--hyper-map SPEC:ours=theirs]... [--hold SPEC:name=value]...
                       [--hypothesis-profile=ci|default|hunt]
                       [--drift-report=PATH.json]

Loaded once, under its module's name ``conformance.plugin``, by either of two
routes: the ``pytest11`` entry point of the installed package
(``pyproject.toml``), which pytest loads in every directory, or
``conformance/conftest.py`` when the suite runs from a checkout without it.
``-p no:conformance.plugin`` turns it off.  It parametrizes only the suite's
own test functions (``conformance.test_*``), so the fixtures of another
project's tests named ``dtype`` or ``path`` are left alone.

Every run collects a drift report (``conformance.run_report``): the terminal
summary prints its table per backend, and ``--drift-report`` writes its JSON.
Under pytest-xdist each worker sends its part to the controller at the end of
its session (``workeroutput["drift"]``), which merges them.
"""
from __future__ import annotations

import warnings

import pytest
from hypothesis import settings

import spec as spec_pkg

# Registers the Hypothesis profiles and loads none: --hypothesis-profile, else Hypothesis's own choice
# (``ci`` where it detects CI, ``default`` elsewhere) decides; see conformance/profiles.py.
from . import profiles  # noqa: F401
from . import backends as backend_registry
from . import known_deviations, strategies
from .environment import target_environment
from .run_report import DriftCollector


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--backend", default="numpy",
                    help="numpy, torch-cpu, torch-cuda, or module:attr naming a backend object")
    group.addoption("--spec", action="append", default=[], help="only this optimizer spec (repeatable)")
    group.addoption("--optimizer", action="append", default=[], metavar="SPEC=module:Class",
                    help="audit a third-party class with torch.optim's API as SPEC (repeatable); only those run")
    group.addoption("--hyper-map", action="append", default=[], metavar="SPEC:ours=theirs",
                    help="rename a hyperparameter for an --optimizer class (repeatable)")
    group.addoption("--hold", action="append", default=[], metavar="SPEC:name=value",
                    help="an --optimizer class has no keyword for this hyperparameter: draw it only at value "
                         "(true, false or a number: what the class's code does) and do not pass it (repeatable)")
    group.addoption("--drift-report", default=None, metavar="PATH.json",
                    help="write the drift report (per optimizer × path × dtype error statistics, worst inputs, "
                         "execution target) as JSON to PATH")


def _overrides(config) -> dict:
    out = {}
    for item in config.getoption("--optimizer"):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise pytest.UsageError(f"--optimizer {item!r}: expected SPEC=module:Class")
        _known_spec(name, f"--optimizer {item!r}")
        out[name] = target
    return out


def _spec_items(config, option: str, form: str):
    """Each ``SPEC:key=value`` given to ``option``: (item, spec name, spec, key, value text), the spec checked."""
    for item in config.getoption(option):
        name, _, pair = item.partition(":")
        key, _, text = pair.partition("=")
        if not (name and key and text):
            raise pytest.UsageError(f"{option} {item!r}: expected {form}")
        yield item, name, _known_spec(name, f"{option} {item!r}"), key, text


def _hyper_map(config) -> dict:
    out = {}
    for item, name, spec, ours, theirs in _spec_items(config, "--hyper-map", "SPEC:ours=theirs"):
        known = [h.name for h in spec.hyperparameters]
        if {"beta1", "beta2"} <= set(known):
            known.append("betas")  # torch passes (β₁, β₂) as one keyword
        if ours not in known:
            raise pytest.UsageError(f"--hyper-map {item!r}: {name} has no hyperparameter {ours!r}; "
                                    f"known: {', '.join(known)}")
        out.setdefault(name, {})[ours] = theirs
    return out


def _holds(config) -> dict:
    """``--hold SPEC:name=value`` -> {spec: {name: value}}, each checked against the spec's hyperparameter."""
    out = {}
    for item, name, spec, hname, text in _spec_items(config, "--hold", "SPEC:name=value"):
        try:
            out.setdefault(name, {})[hname] = hold_value(spec, hname, text)
        except ValueError as e:
            raise pytest.UsageError(f"--hold {item!r}: {e}") from None
    return out


def hold_value(spec, hname: str, text: str):
    """The value ``text`` holds ``spec``'s hyperparameter ``hname`` at (a flag: true or false; else a number in its
    domain), or a ValueError that says why not."""
    known = {h.name: h for h in spec.hyperparameters}
    if hname not in known:
        raise ValueError(f"{spec.name} has no hyperparameter {hname!r}; known: {', '.join(known)}")
    h = known[hname]
    if h.is_flag:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{hname} is a flag: true or false")
        return text.lower() == "true"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not h.accepts(value):
        raise ValueError(f"{value!r} is outside {hname}'s domain {h.domain}")
    return value


def _known_spec(name: str, option: str):
    """The spec called ``name``, or a usage error for ``option`` that lists the known names."""
    try:
        return spec_pkg.get(name)
    except KeyError as e:
        raise pytest.UsageError(f"{option}: {e.args[0]}") from None


@pytest.fixture(scope="session")
def backend(request):
    return request.config._conformance_backend


@pytest.fixture
def req(request):
    """The test's pytest ``request``, as a fixture of its own: the Hypothesis tests take ``req`` because
    HypoFuzz (``python -m conformance fuzz``) supplies a test's fixtures but not the ``request`` pseudo-fixture."""
    return request


def pytest_configure(config):
    if not hasattr(config, "getoption") or config.getoption("--backend", None) is None:
        return
    for name in config.getoption("--spec"):
        _known_spec(name, f"--spec {name!r}")
    overrides = _overrides(config)
    classes = {}
    for name, target in overrides.items():
        try:
            classes[name] = backend_registry.load_class(target)
        except ValueError as e:
            raise pytest.UsageError(f"--optimizer {name}={target}: {e}")
    holds = _holds(config)
    if holds and not overrides:
        raise pytest.UsageError("--hold applies to an --optimizer class (SPEC=module:Class); none was given")
    for name in holds:
        if name not in overrides:
            raise pytest.UsageError(f"--hold {name}:...: no --optimizer {name}=module:Class to hold it for")
    strategies.HELD.clear()
    strategies.HELD.update(holds)
    try:
        config._conformance_backend = backend_registry.load(
            config.getoption("--backend"), overrides=classes or None, hyper_map=_hyper_map(config) or None,
            holds=holds or None)
    except ValueError as e:
        raise pytest.UsageError(str(e))
    config._conformance_overrides = overrides
    config._conformance_mapping = {"hyper_map": _hyper_map(config), "holds": holds}
    workerinput = getattr(config, "workerinput", None)  # set by pytest-xdist on its workers only
    config._drift_collector = DriftCollector(
        backend_obj=config._conformance_backend, overrides=overrides, mapping=config._conformance_mapping,
        worker=None if workerinput is None else workerinput.get("workerid"),
        run=_run_info(config))


def _hypothesis_profile(config) -> str:
    """The profile the run uses: the option's, else the one Hypothesis made active (``ci`` under CI)."""
    try:
        name = config.getoption("--hypothesis-profile", None)
    except ValueError:
        name = None
    return name or settings.get_current_profile_name()


def _run_info(config) -> dict:
    name = _hypothesis_profile(config)
    try:
        prof = settings.get_profile(name)
        profile = {"max_examples": prof.max_examples, "derandomize": prof.derandomize,
                   "phases": [p.name for p in prof.phases]}
    except Exception:
        profile = None
    try:
        workers = config.getoption("numprocesses", None)
    except ValueError:
        workers = None
    return {"args": [str(a) for a in config.invocation_params.args], "backend": config.getoption("--backend"),
            "hypothesis_profile": name, "hypothesis_settings": profile,
            "xdist_workers": workers if workers else None}


def selected_specs(config) -> list:
    overrides = getattr(config, "_conformance_overrides", {})
    # a backend of another framework's dialects names its own (``specs``: the optax backend's @optax specs)
    default = getattr(getattr(config, "_conformance_backend", None), "specs", None) \
        or [*spec_pkg.OPTIMIZERS, *spec_pkg.OBSERVED_OPTIMIZERS]
    names = list(config.getoption("--spec")) or (list(overrides) if overrides else list(default))
    if overrides:
        names = [n for n in names if n in overrides]
    for n in names:
        spec_pkg.get(n)  # a clear error for an unknown name
    return [n for n in names if n not in spec_pkg.CLOSURE_OPTIMIZERS]


def closure_specs_asked_for(config) -> list:
    """The closure-driven specs (L-BFGS) that ``--spec`` or ``--optimizer`` named: the element-wise tests list
    each as not applicable, with the reason.  A run that names none checks them by their own tests only."""
    asked = list(config.getoption("--spec")) or list(getattr(config, "_conformance_overrides", {}))
    return [n for n in asked if n in spec_pkg.CLOSURE_OPTIMIZERS]


def closure_spec_selected(config, name: str) -> bool:
    """Whether this run checks closure-driven spec ``name``: named by ``--spec``/``--optimizer``, or neither
    option given."""
    named = list(config.getoption("--spec")) or list(getattr(config, "_conformance_overrides", {}))
    return not named or name in named


def combos(config, value_test: bool = True):
    """(optimizer, path, dtype) params, with a reason-carrying skip where the backend has none.  ``value_test``:
    for a test that compares values with the spec; the others (properties of a backend against itself) leave out
    the paths the backend names in ``value_only_paths``."""
    impl = config._conformance_backend
    name = config.getoption("--backend")
    out = [pytest.param(opt, "-", "-", marks=pytest.mark.skip(reason=spec_pkg.CLOSURE_OPTIMIZERS[opt].why), id=opt)
           for opt in closure_specs_asked_for(config)]
    for opt in selected_specs(config):
        paths = list(impl.paths(opt))
        if not value_test:
            paths = [p for p in paths if p not in getattr(impl, "value_only_paths", ())] or paths
        if not paths:
            why = getattr(impl, "skip_reason", None) or f"backend {name} does not implement {opt}"
            out.append(pytest.param(opt, "-", "-", marks=pytest.mark.skip(reason=why), id=f"{opt}"))
            continue
        for path in paths:
            for dtype in impl.dtypes(opt, path):
                out.append(pytest.param(opt, path, dtype, id=f"{opt}-{path}-{dtype}"))
    return out


def refused_axes(config) -> list:
    """One line per optimizer, axis and reason: the case axes (``backend.CASE_AXES``) the backend refuses for the
    selected optimizers' paths and dtypes, with the paths and dtypes each reason holds for."""
    impl = config._conformance_backend
    if not callable(getattr(impl, "case_axes", None)):
        return []
    lines = {}
    for opt in selected_specs(config):
        for path in impl.paths(opt):
            for dtype in impl.dtypes(opt, path):
                for axis, why in impl.case_axes(opt, path, dtype).items():
                    if why is not None:
                        lines.setdefault((opt, axis, why), []).append(f"{path}/{dtype}")
    return [f"{opt} {axis}: not drawn on {', '.join(where)}: {why}" for (opt, axis, why), where in lines.items()]


def _ours(function) -> bool:
    """A test function of this package (not one of another project's suite that shares a fixture name)."""
    return (getattr(function, "__module__", None) or "").split(".")[0] == __name__.split(".")[0]


def pytest_generate_tests(metafunc):
    if {"optimizer", "path", "dtype"} <= set(metafunc.fixturenames) and _ours(metafunc.function):
        value_test = metafunc.function.__name__ in known_deviations.VALUE_TESTS
        metafunc.parametrize(("optimizer", "path", "dtype"), combos(metafunc.config, value_test))


def _item_params(item):
    """(spec, path, dtype) of a conformance or schedule test item, or None (path and dtype "-" for schedules)."""
    if not _ours(getattr(item, "function", None)):
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "optimizer" in params and "path" in params and "dtype" in params:
        return None if params["path"] == "-" else (params["optimizer"], params["path"], params["dtype"])
    if "schedule" in params:
        return params["schedule"], "-", "-"
    return None


def pytest_collection_modifyitems(session, config, items):
    """Apply the known deviations: an ``xfail`` mark on each test that a whole-parameter entry names (scoped to
    the entry's tests, implementation and version); then warn about entries the run could have collected
    (implementation and version in force, spec and one of its tests collected, a path of theirs offered) but
    that match no collected test: stale, or misnamed."""
    impl = getattr(config, "_conformance_backend", None)
    if impl is None:
        return
    _deselect_unselected_closure_specs(config, items)
    name = config.getoption("--backend")
    targets, offered, matched, possible = {}, {}, set(), set()
    for item in items:
        params = _item_params(item)
        if params is None:
            continue
        spec, path, dtype = params
        key = (spec, None if path == "-" else path)
        if key not in targets:
            targets[key] = known_deviations.target_of(impl, name, *key)
        target, test = targets[key], item.originalname
        if spec not in offered:  # CUDA's paths are not offered on a CPU: no warning about those entries
            offered[spec] = ("-",) if path == "-" else tuple(impl.paths(spec))
        for d in known_deviations.KNOWN_DEVIATIONS:
            if test in d.tests and d.concerns(target) and known_deviations.matches_pattern(spec, d.spec):
                if any(known_deviations.matches_pattern(x, d.path) for x in offered[spec]):
                    possible.add(d.id)
                if known_deviations.matches_pattern(path, d.path) and known_deviations.matches_pattern(dtype, d.dtype):
                    matched.add(d.id)
        dev = known_deviations.find(target, spec, path, dtype, test)
        if dev is not None:
            item.add_marker(pytest.mark.xfail(reason=known_deviations.xfail_reason(dev.id, dev.reason), strict=False))
    for d in known_deviations.KNOWN_DEVIATIONS:
        if d.id in possible and d.id not in matched and d.effect == "xfail":
            warnings.warn(pytest.PytestWarning(
                f"known deviation {d.id} ({d.evidence}) matches no collected test: it names tests "
                f"{', '.join(d.tests)}, path {d.path!r}, dtype {d.dtype!r}; check conformance/known_deviations.py"))


@pytest.hookimpl(tryfirst=True)
def _deselect_unselected_closure_specs(config, items) -> None:
    """Leave out the tests of a closure-driven spec (``conformance/test_lbfgs.py``) that ``--spec`` or
    ``--optimizer`` did not select, as the element-wise tests of an unselected spec are never generated."""
    dropped = [item for item in items for name, info in spec_pkg.CLOSURE_OPTIMIZERS.items()
               if _ours(getattr(item, "function", None)) and str(item.path).endswith(info.checked_by.split("/")[-1])
               and not closure_spec_selected(config, name)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def pytest_runtest_call(item):
    """Each parametrization of a Hypothesis test gets its own example-database key, from its node id.

    Hypothesis's pytest plugin does this for ``@pytest.mark.parametrize`` but not for the parametrization of
    ``pytest_generate_tests`` used here, so every optimizer × path × dtype of a test shared one key: an example
    stored by one was replayed into the others.  HypoFuzz keys by the node id as well, so with this its findings
    replay under plain pytest (run from the same directory with the same arguments: the node id must match)."""
    inner = getattr(getattr(getattr(item, "obj", None), "hypothesis", None), "inner_test", None)
    if inner is not None and hasattr(item, "callspec") and _ours(getattr(item, "function", None)):
        inner._hypothesis_internal_add_digest = item.nodeid.encode()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Record each conformance test's outcome in the drift report (its verdict comes from them)."""
    report = yield
    collector = getattr(item.config, "_drift_collector", None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    if collector is None or params.get("path") == "-":  # "-": an optimizer the backend lacks (skipped)
        return report
    outcome = None
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed" if report.passed else "failed"
        else:
            outcome = report.outcome  # passed, failed, skipped
    if outcome is not None:
        key = None  # other tests: the entries they added cases to
        if {"optimizer", "path", "dtype"} <= params.keys():
            key = (item.config.getoption("--backend"), params["optimizer"], params["path"], params["dtype"])
        collector.outcome(report.nodeid, outcome, key)
    return report


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    collector = getattr(config, "_drift_collector", None)
    if collector is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the data to the controller
        workeroutput["drift"] = collector.to_json(indent=None)
        return
    collector.run["exitstatus"] = int(exitstatus)
    name = config.getoption("--backend")
    for backend in set(collector.backends()) | {name}:
        if backend not in collector.targets:
            collector.set_target(backend, target_environment(
                backend, config._conformance_backend if backend == name else None))
    path = config.getoption("--drift-report")
    if path:
        collector.write(path)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist, on the controller: merge the drift data a finished worker sent."""
    collector = getattr(node.config, "_drift_collector", None)
    data = getattr(node, "workeroutput", {}).get("drift")
    if collector is not None and data:
        collector.merge(data, source=getattr(node, "gateway", None) and node.gateway.id)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """A test marked xfail by a known deviation ends at its first failing example, as that xfail."""
    from .harness import KnownDeviationMet

    from hypothesis.errors import Unsatisfiable

    try:
        return (yield)
    except KnownDeviationMet as met:
        pytest.xfail(str(met))
    except Unsatisfiable:
        # Every case drawn was set aside by input-specific known deviations: nothing was checked, which is
        # that deviation's doing, not a pass; reported as an expected failure naming the entries.
        aside = pyfuncitem.__dict__.get("_conformance_set_aside")
        if not aside:
            raise
        ids = ", ".join(f"{k} ({n} cases)" for k, n in sorted(aside.items()))
        pytest.xfail(known_deviations.xfail_reason(max(aside, key=aside.get), f"every drawn case was set aside ({ids})"))


def _xfail_entry(report):
    """The known deviation whose ``xfail`` mark (reason ``known deviation ID: ...``) a report carries, if any."""
    return known_deviations.of_xfail_reason(getattr(report, "wasxfail", "") or "")


def pytest_runtest_logreport(report):
    if report.when == "call" and getattr(report, "wasxfail", None) and report.passed:
        entry = _xfail_entry(report)
        if entry is None or not entry.on_some_inputs:
            report.sections.append(("stale known deviation", report.wasxfail))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    xpassed = terminalreporter.stats.get("xpassed", [])
    stale = [r for r in xpassed if not getattr(_xfail_entry(r), "on_some_inputs", False)]
    unseen = [r for r in xpassed if r not in stale]
    if stale:
        terminalreporter.section("stale known deviations")
        for rep in stale:
            terminalreporter.write_line(f"{rep.nodeid} passed although a known deviation covers it: check "
                                        "conformance/known_deviations.py")
    if unseen:
        terminalreporter.section("known deviations not met this run")
        for rep in unseen:
            entry = _xfail_entry(rep)
            terminalreporter.write_line(f"{rep.nodeid} passed: {entry.id} shows on some inputs only, and none was "
                                        f"drawn ({entry.reproduced_by} reproduces it)")
    collector = getattr(config, "_drift_collector", None)
    if collector is not None and collector.entries and getattr(config, "workerinput", None) is None:
        refused = refused_axes(config)
        if refused:
            terminalreporter.section("case axes the backend refuses")
            for line in refused:
                terminalreporter.write_line(line)
    if collector is not None and (collector.entries or collector.schedules) \
            and getattr(config, "workerinput", None) is None:
        for backend in collector.backends():
            terminalreporter.section(f"drift report: {backend}")
            for line in collector.table(backend).splitlines():
                terminalreporter.write_line(line)
        path = config.getoption("--drift-report")
        if path:
            terminalreporter.write_line(f"drift report JSON: {path}")
