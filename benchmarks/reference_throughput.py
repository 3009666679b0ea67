"""Throughput of the exact reference and of the error bound, in element-steps per second.

Adam with its default hyperparameters, N(0, 1) parameters and gradients
rounded to each target format:

* one step of 64 elements (``--elements``), and
* a 100-step trajectory (``--steps``) of 16 elements (``--trajectory-elements``),

timed for the interval reference (``reference.step.trajectory``, correctly
rounded to the target format) and separately for the error bound
(``reference.bound.trajectory_bounds`` in that format).  An element-step is
one element advanced by one step.  The program is compiled before timing (a
warm-up run, and a warm-up call per figure), and each figure is the best of ``--repeat`` runs, timed by the
wall clock or (``--clock cpu``) by this process's CPU time, which a busy
shared machine disturbs less.

    python benchmarks/reference_throughput.py [--elements 64] [--trajectory-elements 16] [--steps 100]
                                              [--repeat 3] [--clock wall|cpu] [--formats ...]
"""
from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mpmath  # noqa: E402
import numpy as np  # noqa: E402

import spec  # noqa: E402
from reference.bound import trajectory_bounds  # noqa: E402
from reference.formats import FORMATS  # noqa: E402
from reference.step import trajectory  # noqa: E402

FORMAT_NAMES = ("float16", "bfloat16", "float32", "float64")


def _data(fmt: str, n: int, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    dtype = FORMATS[fmt].dtype
    param = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(steps)]
    return param, grads


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _best(fn, repeat: int, clock) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def measure(fmt: str, n: int, steps: int, repeat: int, seed: int, clock=time.perf_counter) -> dict:
    s = spec.OPTIMIZERS["adam"]
    hyper = s.complete({})
    param, grads = _data(fmt, n, steps, seed)
    f = FORMATS[fmt]
    runs = {
        "reference": lambda: trajectory(s, hyper, param, grads, formats=(fmt,)),
        "bound": lambda: trajectory_bounds(s, hyper, param, grads, f),
    }
    out = {}
    for name, fn in runs.items():
        fn()  # warm-up: compiles the program
        out[name] = n * steps / _best(fn, repeat, clock)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=64, help="elements for the one-step figure")
    parser.add_argument("--trajectory-elements", type=int, default=16, help="elements for the trajectory figure")
    parser.add_argument("--steps", type=int, default=100, help="steps of the trajectory figure")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (the best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--formats", nargs="+", default=list(FORMAT_NAMES), choices=FORMAT_NAMES)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time")
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]

    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(f"python {platform.python_version()}, mpmath {mpmath.__version__} (backend {mpmath.libmp.BACKEND}), "
          f"numpy {np.__version__}, {platform.machine()}")
    print(f"Adam, default hyperparameters; element-steps per second ({args.clock} clock, best of {args.repeat})")
    print()
    one = f"1 step × {args.elements}"
    many = f"{args.steps} steps × {args.trajectory_elements}"
    columns = [f"reference {one}", f"reference {many}", f"bound {one}", f"bound {many}"]
    print(f"{'format':<10}" + "".join(f"{c:>{len(c) + 3}}" for c in columns))
    print("-" * (10 + sum(len(c) + 3 for c in columns)))
    measure("float32", args.elements, 2, 1, args.seed + 1, clock)  # warm-up: imports, mpmath caches
    for fmt in args.formats:
        single = measure(fmt, args.elements, 1, args.repeat, args.seed, clock)
        traj = measure(fmt, args.trajectory_elements, args.steps, args.repeat, args.seed, clock)
        cells = [single["reference"], traj["reference"], single["bound"], traj["bound"]]
        print(f"{fmt:<10}" + "".join(f"{x:>{len(c) + 3},.0f}" for x, c in zip(cells, columns)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
