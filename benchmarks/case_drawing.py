"""What drawing a realistic case costs: a tensor's values in one Hypothesis draw, beside one draw per value.

``conformance.strategies`` draws a small tensor's values as one ``st.binary`` and a bulk array's spots as one
``st.integers`` (how many) and one ``st.binary`` (``decode_values``).  Until b66cec7 each value was its own draw (a
``one_of`` of ``builds`` of three draws) and each spot a list entry of an index and such a value; the
``_*_per_value`` strategies below are that code, so that both run in one process.  Each draws the same number of
derandomized cases, not the same cases (their choices differ, and so do the shapes drawn from them).  Prints the
milliseconds per case and the Hypothesis choices per case of each, per optimizer and dtype, and the ratio of the
milliseconds.

    python benchmarks/case_drawing.py [--examples 30] [--optimizer adam --optimizer sgd] [--dtype float32]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import spec as spec_pkg  # noqa: E402
from conformance import strategies  # noqa: E402
from reference.formats import get_format, round_to_format, to_hex  # noqa: E402


def _element_per_value(dtype: str) -> st.SearchStrategy:
    """b66cec7^'s ``element``: one value, a one_of of builds of three draws, rounded through Fractions."""
    fmt = get_format(dtype)
    tiny = float(fmt.min_subnormal)
    emax = min(fmt.emax, 30)
    normal = st.builds(lambda s, e, m: s * m * 2.0 ** e, st.sampled_from([-1.0, 1.0]),
                       st.integers(-24, min(emax - 1, 12)), st.floats(1.0, 2.0, exclude_max=True))
    wide = st.builds(lambda s, e, m: s * m * 2.0 ** e, st.sampled_from([-1.0, 1.0]),
                     st.integers(fmt.emin - fmt.precision + 1, fmt.emax), st.floats(1.0, 2.0, exclude_max=True))
    subnormal = st.builds(lambda s, k: s * k * tiny, st.sampled_from([-1.0, 1.0]), st.integers(1, 2 ** 4))
    value = st.one_of(normal, normal, normal, st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5]), subnormal, wide)
    return value.map(lambda x: round_to_format(Fraction(x) if math.isfinite(x) else x, fmt) if x != 0
                     else fmt.dtype.type(x))


def _array_per_value(dtype: str, shape: tuple) -> st.SearchStrategy:
    n = int(np.prod(shape)) if shape else 1
    return st.lists(_element_per_value(dtype), min_size=n, max_size=n).map(
        lambda xs: np.array(xs, dtype=get_format(dtype).dtype).reshape(shape))


@st.composite
def _bulk_per_value(draw, dtype: str, shape: tuple) -> np.ndarray:
    n = int(np.prod(shape)) if shape else 1
    seed = draw(st.integers(0, 2 ** 32 - 1))
    spots = draw(st.lists(st.tuples(st.integers(0, n - 1), _element_per_value(dtype)), min_size=1, max_size=16))
    return strategies.bulk_array(dtype, shape, seed, tuple((k, to_hex(v)) for k, v in spots))


def cost(optimizer: str, dtype: str, examples: int) -> tuple:
    """(ms per case, choices per case) of ``examples`` derandomized realistic cases."""
    spec = spec_pkg.get(optimizer)
    choices = []

    @settings(max_examples=examples, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        data.draw(strategies.cases(spec, dtype, realistic=True))
        choices.append(len(data.conjecture_data.choices))

    start = time.perf_counter()
    draw()
    return 1000 * (time.perf_counter() - start) / len(choices), sum(choices) / len(choices)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=30)
    ap.add_argument("--optimizer", action="append")
    ap.add_argument("--dtype", action="append")
    args = ap.parse_args()
    optimizers = args.optimizer or ["adam", "sgd", "rmsprop"]
    dtypes = args.dtype or ["float32", "bfloat16", "float64"]
    print(f"{'optimizer':10s} {'dtype':9s} {'one draw a tensor':>22s} {'one draw a value':>22s} {'ratio':>6s}")
    print(f"{'':20s} {'ms/case':>11s} {'choices':>10s} {'ms/case':>11s} {'choices':>10s}")
    now = (strategies.array, strategies.bulk_arrays)
    for optimizer in optimizers:
        for dtype in dtypes:
            strategies.array, strategies.bulk_arrays = now
            fast = cost(optimizer, dtype, args.examples)
            strategies.array, strategies.bulk_arrays = _array_per_value, _bulk_per_value
            slow = cost(optimizer, dtype, args.examples)
            print(f"{optimizer:10s} {dtype:9s} {fast[0]:11.1f} {fast[1]:10.0f} {slow[0]:11.1f} {slow[1]:10.0f} "
                  f"{slow[0] / fast[0]:6.2f}")
    strategies.array, strategies.bulk_arrays = now


if __name__ == "__main__":
    main()
