"""The committed docs/ are what ``python -m reports.docs`` generates now, and the dialect comparison holds.

Regenerates every page into a temporary directory and compares it with docs/
file by file.  Only generated files are compared: docs/drift/ (the drift
report), docs/img/ and docs/measured/ are written by other commands or by hand
(the generator reads docs/drift/drift.json and docs/measured/third-party.md,
so a changed input makes the pages stale too).
"""
from __future__ import annotations

import difflib

import pytest
import sympy as sp

import spec
from reference import compare
from reports import docs
from spec import dialects

STALE = "docs/ is stale: run `python -m reports.docs` and commit the result"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("docs")
    files = docs.generate(docs.DOCS)
    docs.write(out, files)
    return out, files


def test_docs_are_up_to_date(generated):
    out, files = generated
    problems = []
    for rel in files:
        committed = docs.DOCS / rel
        fresh = (out / rel).read_text()
        if not committed.is_file():
            problems.append(f"{rel}: missing")
        elif committed.read_text() != fresh:
            diff = difflib.unified_diff(committed.read_text().splitlines(), fresh.splitlines(), f"docs/{rel}",
                                        f"generated/{rel}", n=1, lineterm="")
            problems.append(f"{rel}: differs\n" + "\n".join(list(diff)[:12]))
    for d in docs.GENERATED_DIRS:
        for page in sorted((docs.DOCS / d).glob("*.md")) if (docs.DOCS / d).is_dir() else []:
            if f"{d}/{page.name}" not in files:
                problems.append(f"{d}/{page.name}: no longer generated (a removed spec?)")
    assert not problems, STALE + "\n\n" + "\n\n".join(problems)


def test_no_timestamps(generated):
    """Deterministic output: nothing that changes from run to run (the staleness test catches the rest)."""
    import re
    _, files = generated
    for rel, text in files.items():
        assert not re.search(r"\b20\d\d-\d\d-\d\d[T ]\d\d:", text), f"{rel} holds a timestamp"
        assert " at 0x" not in text, f"{rel} holds an object address"


def test_index_links_every_page(generated):
    _, files = generated
    index = files["index.md"]
    for rel in files:
        if rel != "index.md":
            assert f"]({rel})" in index, f"index.md does not link {rel}"


def test_every_dialect_is_compared_and_resolvable():
    compared = {p.dialect for p in compare.PAIRS}
    from spec.identities import IDENTITIES
    for name, identity in compare.STATED_BY_IDENTITY.items():  # related to its base by a proved identity instead
        assert any(i.name == identity and i.holds and name in i.specs for i in IDENTITIES), name
    assert compared | set(compare.STATED_BY_IDENTITY) == set(dialects.DIALECTS)
    for name, d in dialects.DIALECTS.items():
        assert spec.get(name) is d
        assert dialects.get(name) is d
        assert name not in spec.OPTIMIZERS
        assert spec.get(dialects.INFO[name].base).dialect == "torch"
    assert dialects.get("adam") is spec.OPTIMIZERS["adam"]
    with pytest.raises(KeyError, match="dialects"):
        spec.get("adam@nowhere")


def test_headline_verdicts(generated):
    """The verdicts the docs state, pinned: a change in a spec that flips one must be looked at."""
    page = generated[1]["dialects.md"]
    expected = {
        "adam@keras": compare.MAPPED, "adamw@keras": compare.MAPPED, "sgd@keras": compare.EQUAL,
        "rmsprop@keras": compare.DIFFERENT, "rmsprop@tf": compare.DIFFERENT, "adagrad@keras": compare.DIFFERENT,
        "adamax@keras": compare.DIFFERENT, "nadam@keras": compare.MAPPED, "adadelta@keras": compare.EQUAL,
        "adam@optax": compare.EQUAL, "adamw@optax": compare.EQUAL, "sgd@optax": compare.EQUAL,
        "rmsprop@optax": compare.DIFFERENT, "adagrad@optax": compare.DIFFERENT, "adamax@optax": compare.EQUAL,
        "nadam@optax": compare.DIFFERENT, "adadelta@optax": compare.EQUAL,
        "lion@optax": compare.EQUAL, "adan@optax": compare.DIFFERENT, "ademamix@optax": compare.EQUAL,
        "schedulefree_adamw@optax": compare.EQUAL,
        "lamb@pytorch-optimizer": compare.DIFFERENT, "lamb@optax": compare.EQUAL, "lamb@keras": compare.EQUAL,
        "lamb@timm": compare.DIFFERENT, "lion@keras": compare.EQUAL,
    }
    for name, verdict in expected.items():
        row = next(line for line in page.splitlines() if f"[`{name}`]" in line and line.startswith("|"))
        assert f"**{verdict}**" in row, (name, row)
    assert "equal for constant lr" in page  # SGD and RMSprop momentum: lr inside vs outside the buffer


# --------------------------------------------------------------------------- how formulas print

def test_binary64_literals_print_as_written_with_their_exact_value_in_a_note(generated):
    from spec.core import py_float
    assert docs._latex(py_float(0.96)) == "0.96"
    assert docs._latex(py_float(0.96) ** sp.Symbol("t", real=True)) == "0.96^{t}"
    assert docs._latex(py_float(1e-7) * sp.Symbol("x", real=True)) == "10^{-7} x"
    assert docs._latex(sp.Rational(1, 2)) == "\\frac{1}{2}"  # a true rational, not a literal
    assert docs._latex(py_float(0.75)) == "\\frac{3}{4}"  # as short as a fraction, and exact
    docs._literals_note()
    docs._latex(py_float(0.1) * sp.Symbol("x", real=True))
    assert docs._literals_note().endswith(
        "0.1 is exactly $3602879701896397 / 2^{55}$ = 0.1000000000000000055511151231257827021181583404541015625.\n")
    assert docs._literals_note() == ""  # each note forgets what it listed
    _, files = generated
    for name in ("nadam", "nadam@keras"):
        page = files[f"optimizers/{name}.md"]
        assert "1125899906842624" not in page and "0.96^{" in page
        assert page.count("0.96 is exactly $1080863910568919 / 2^{50}$ = "
                          "0.95999999999999996447286321199499070644378662109375") == 1


def test_sums_print_positive_terms_first(generated):
    theta, lr, delta, lam = sp.symbols("theta eta Delta lambda", real=True)
    assert docs._latex(theta - lr * delta) == "\\theta - \\Delta \\eta"
    assert docs._latex(1 - lr * lam) == "1 - \\eta \\lambda"
    assert docs._latex(sp.Symbol("t", real=True) + 1) == "t + 1"
    _, files = generated
    assert "\\theta &\\leftarrow \\theta - \\frac{c_{g} g}{d}" in files["optimizers/nadam.md"]
    assert not any("\\leftarrow - " in line and line.rstrip(" \\").endswith("+ \\theta")
                   for page in files.values() for line in page.splitlines())

