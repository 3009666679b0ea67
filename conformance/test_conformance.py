"""The backend against the exact spec: whole trajectories and single steps, per optimizer × path × dtype."""
from __future__ import annotations

from hypothesis import given, strategies as st

import spec as spec_pkg

from .harness import offered_axes, run_and_check
from .strategies import cases


@given(data=st.data())
def test_trajectory(req, backend, optimizer, path, dtype, data):
    """Every step of a 1..K-step trajectory lies within the error bound of the exact trajectory."""
    case = data.draw(cases(spec_pkg.get(optimizer), dtype, realistic=True,
                           axes=offered_axes(backend, optimizer, path, dtype)), label="case")
    run_and_check(req, backend, case, path, "trajectory")


@given(data=st.data())
def test_single_steps(req, backend, optimizer, path, dtype, data):
    """Each step, taken from the backend's own previous state, is within the bound of one exact step."""
    case = data.draw(cases(spec_pkg.get(optimizer), dtype, min_steps=2, realistic=True,
                           axes=offered_axes(backend, optimizer, path, dtype)), label="case")
    run_and_check(req, backend, case, path, "step")
