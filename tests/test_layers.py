"""The layers import one way: spec → reference → conformance → reports.

Every ``import`` in every module of the three packages is read from its AST
(function-local ones included, relative ones resolved), and a module may
import only its own layer and those below it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("spec", "reference", "conformance", "reports")  # lowest first
SCANNED = LAYERS

# (importing file, imported module) edges that break the order, each with why.
KNOWN_EXCEPTIONS: set = {
    # The package's command line (python -m conformance audit) hands the audit to the report layer, which runs
    # this package's suite and writes the report; nothing in conformance imports it otherwise.
    ("conformance/__main__.py", "reports.audit.main"),
}


def module_name(path: Path) -> tuple:
    """The dotted name of the module at ``path`` (relative to ROOT), and whether it is a package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        return parts[:-1], True
    return parts, False


def imports(path: Path, source: str = None, top_level: bool = False) -> list:
    """The absolute names ``path`` imports: ``import m`` yields ``m``, ``from m import n`` yields ``m.n``
    (a submodule or a name in ``m``: either way an edge into ``m``'s package), ``from m import *`` ``m``.
    ``top_level``: only the imports a module runs when it is imported (not those inside functions)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    name, is_package = module_name(path)
    package = name if is_package else name[:-1]
    out = []
    for node in (_module_level(tree) if top_level else ast.walk(tree)):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ((node.module,) if node.module else ()))
            else:
                module = node.module
            out.extend(module if alias.name == "*" else f"{module}.{alias.name}" if module else alias.name
                       for alias in node.names)
    return out


def _module_level(tree):
    """The statements run at import: the module body, descending into if/try/with but not into defs."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            todo.extend(ast.iter_child_nodes(node))
            todo.extend(getattr(node, "handlers", ()))


def violations(path: Path, source: str = None) -> set:
    """(file, imported module) for each import of a higher layer than the file's own."""
    rel = path.relative_to(ROOT).as_posix()
    own = LAYERS.index(rel.split("/")[0])
    found = set()
    for module in imports(path, source):
        top = module.split(".")[0]
        if top in LAYERS and LAYERS.index(top) > own:
            found.add((rel, module))
    return found


def _files() -> list:
    return sorted(p for layer in SCANNED for p in (ROOT / layer).rglob("*.py"))


def _upward_edges() -> set:
    return set().union(*(violations(path) for path in _files()))


def _excused(edge, exception) -> bool:
    """``exception`` names the imported module: its names and submodules are covered, its package is not."""
    (f, m), (ef, em) = edge, exception
    return f == ef and (m == em or m.startswith(em + "."))


def test_every_layer_imports_only_itself_and_the_layers_below():
    bad = {e for e in _upward_edges() if not any(_excused(e, x) for x in KNOWN_EXCEPTIONS)}
    assert not bad, "imports against the layer order spec → reference → conformance → reports:\n" + "\n".join(
        f"  {f} imports {m}" for f, m in sorted(bad))


def test_known_exceptions_still_exist():
    """An exception the code no longer needs must be removed, so it cannot hide a new edge later."""
    edges = _upward_edges()
    stale = {x for x in KNOWN_EXCEPTIONS if not any(_excused(e, x) for e in edges)}
    assert not stale, f"remove these from KNOWN_EXCEPTIONS, the imports are gone: {sorted(stale)}"


def _module_graph() -> dict:
    """Module → the project modules it imports at import time (``from m import n`` counts as ``m.n`` when that
    is a module, else as ``m``)."""
    files = {".".join(module_name(p)[0]): p for p in _files()}
    graph = {}
    for name, path in files.items():
        targets = set()
        for module in imports(path, top_level=True):
            while module and module not in files:
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    return graph


def test_no_import_cycles():
    """No cycle of module-level imports among the project's modules (a cycle is what function-local imports
    used to hide: conformance.backends.torch_backend and the run report imported each other)."""
    graph = _module_graph()
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    # A package's __init__ importing its own submodules, which import the package back for a name, is how
    # Python packages are built (spec/__init__ re-exports spec.sgd, ... which import spec.core): not a cycle
    # between layers' modules.  Only cycles through two non-package modules count.
    real = [c for c in cycles if sum(1 for m in c[:-1] if not (ROOT / m.replace(".", "/") / "__init__.py").exists()) > 1]
    assert not real, "import cycles:\n" + "\n".join("  " + " → ".join(c) for c in real)


def test_the_scan_covers_every_layer():
    files = {p.relative_to(ROOT).parts[0] for p in _files()}
    assert files == set(SCANNED)
    assert ROOT / "conformance" / "backends" / "torch_backend.py" in _files()  # subpackages too


@pytest.mark.parametrize("where, source, upward", [
    ("spec/core.py", "def f():\n    import reference.step\n", {"reference.step"}),  # function-local
    ("spec/core.py", "from reference import bound\n", {"reference.bound"}),
    ("reference/step.py", "from conformance.check import x\n", {"conformance.check.x"}),
    ("reference/step.py", "import reports.summary as r\n", {"reports.summary"}),
    ("conformance/backends/torch_backend.py", "from ...reports import page\n", {"reports.page"}),
    ("reference/step.py", "from ..conformance import check\n", {"conformance.check"}),
    ("reference/step.py", "from . import arith\nfrom spec import core\nimport numpy\n", set()),
    ("conformance/check.py", "from reference.step import trajectory\nfrom .. import spec\n", set()),
    ("spec/core.py", "from .. import conformance\n", {"conformance"}),
    ("reference/bound.py", "from conformance.check import *\n", {"conformance.check"}),
])
def test_the_scan_finds_upward_imports(where, source, upward):
    """The scanner itself: absolute, relative and function-local imports of a higher layer are found."""
    assert {m for _, m in violations(ROOT / where, source)} == upward
