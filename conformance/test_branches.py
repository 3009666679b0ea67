"""Both sides of every branch of the spec, per optimizer × path × dtype (``conformance/branches.py``)."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

import spec as spec_pkg

from .branches import boundary_cases, drawn
from .harness import run_and_check


@given(data=st.data())
def test_branches(req, backend, optimizer, path, dtype, data):
    """A trajectory whose groups and gradient elements sit just on each side of every boundary of the spec
    lies within the error bound of the exact trajectory."""
    if not drawn(optimizer):
        pytest.skip(f"{optimizer}: its spec has no comparison to draw inputs at (conformance/branches.py)")
    case = data.draw(boundary_cases(spec_pkg.get(optimizer), dtype), label="case")
    run_and_check(req, backend, case, path, "trajectory")
