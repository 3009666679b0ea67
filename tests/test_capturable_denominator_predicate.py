"""The capturable paths' denominator predicate over arrays against its element-by-element definition.

``conformance.deviation_predicates._capturable_denominator_leaves_range`` (the scope of the known deviations
"…-capturable-step-size-in-denominator" and "radam-foreach-step-size-in-denominator") evaluates D over whole arrays,
with a group's tensors that step together joined into one.  Here it must decide every drawn case as the definition
does: the exact trajectory (``reference.step``), element by element, D of each element in mpmath
(``_capturable_denominator``), and the range test of the predicate's docstring.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import spec as spec_pkg
from conformance import deviation_predicates as dp
from conformance.strategies import cases
from reference.formats import get_format
from reference.step import trajectory


def leaves_range_by_definition(data) -> bool:
    fmt = get_format(data.dtype)
    tiny = dp._MP.mpf(2) ** fmt.emin
    low, high = 2 * tiny, dp._MP.mpf(float(fmt.max_finite)) / 2
    least = tiny * dp._MP.mpf(2) ** (1 - fmt.precision)
    if data.optimizer == "radam":  # foreach RAdam steps by m·(1/D): with m = 0, a D whose reciprocal overflows
        least = max(least, 2 / dp._MP.mpf(float(fmt.max_finite)))

    def outside(d, m) -> bool:
        return d != 0 and (not low <= d <= high if m != 0 else not d >= least)

    spec = spec_pkg.get(data.optimizer)
    for i, (h, params) in enumerate(data.groups):
        lrs, in_force = dp._in_force(spec, data, i)
        for j, p0 in enumerate(params):
            grads = [row[i][j] for row in data.grads]
            for s, snap in enumerate(trajectory(spec, h, p0, grads, lrs=lrs, formats=("float64",), validate=False)):
                if snap.stepped and any(outside(d, m) for d, m in
                                        dp._capturable_denominator(data.optimizer, in_force[s], snap, data.dtype)):
                    return True
    return False


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "adamax", "radam"])
def test_the_array_predicate_decides_as_the_definition(optimizer, dtype):
    seen = []

    @settings(max_examples=30, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        case = data.draw(cases(spec_pkg.get(optimizer), dtype, max_steps=6, max_params=3))
        got = dp._capturable_denominator_leaves_range(case)
        assert got == leaves_range_by_definition(case), case
        seen.append(got)
    run()
    assert len(seen) >= 20
