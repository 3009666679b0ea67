"""How many drawn cases the capturable known deviations set aside, per optimizer and dtype.

Draws ``--examples`` cases (``conformance.strategies.cases``, derandomized) per optimizer and dtype and counts
those that an input-specific entry of conformance/known_deviations.py covers on ``--backend``/``--path``: the
share of the capturable domain a torch-cuda run sets aside rather than checks.

    python benchmarks/capturable_set_aside.py [--examples 150] [--backend torch-cuda] [--path capturable-foreach]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import spec as spec_pkg  # noqa: E402
from conformance.known_deviations import affecting, torch_target  # noqa: E402
from conformance.strategies import cases  # noqa: E402

OPTIMIZERS = ("adam", "adamw", "adamax", "radam")
DTYPES = ("float16", "bfloat16", "float32")


def set_aside(optimizer: str, dtype: str, backend: str, path: str, examples: int) -> tuple:
    """(cases drawn, cases a known deviation covers)."""
    counts = [0, 0]
    target = torch_target(backend, optimizer)

    @settings(max_examples=examples, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        case = data.draw(cases(spec_pkg.get(optimizer), dtype))
        counts[0] += 1
        counts[1] += affecting(target, optimizer, path, dtype, case, "test_trajectory") is not None

    draw()
    return tuple(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=150)
    parser.add_argument("--backend", default="torch-cuda")
    parser.add_argument("--path", default="capturable-foreach")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"cases set aside by a known deviation ({args.backend}, {args.path}), of those drawn")
    print(f"{'optimizer':10}" + "".join(f"{d:>12}" for d in DTYPES))
    for optimizer in OPTIMIZERS:
        row = [set_aside(optimizer, d, args.backend, args.path, args.examples) for d in DTYPES]
        print(f"{optimizer:10}" + "".join(f"{f'{k}/{n}':>12}" for n, k in row))


if __name__ == "__main__":
    main()
