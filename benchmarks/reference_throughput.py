"""Throughput of the reference and of the error bound, beside torch's own step, in element-steps per second.

For Adam (defaults), SGD with momentum 0.9 and RMSprop (defaults), N(0, 1) parameters and gradients
rounded to each target format, one step of 2¹⁰, 2¹⁶ and 2²⁰ elements (``--sizes``), on the same
inputs:

* ``torch``: ``torch.optim``'s own CPU step on one thread (``torch.set_num_threads(1)``);
* ``fast ref``: the certified two-phase reference (``reference.fast.fast_trajectory``);
* ``fast bound``: the vectorised tolerance model (``reference.fast.fast_trajectory_bounds``);
* ``ref+bound``: both from one phase-1 pass (``fast_reference_and_bounds``), what a check needs;
* ``checked``: that, and the verdicts (``fast_verdicts``) of every output for values given in the
  format (here the rounded reference itself);
* ``phase 2``: the share of elements the reference and the bound escalated to the exact path;
* ``interval ref`` / ``interval bound``: ``reference.step.trajectory`` and
  ``reference.bound.trajectory_bounds``, element by element, timed on the first ``--exact-elements``
  elements (they are too slow for more).

An element-step is one element advanced by one step.  Each figure is the best of ``--repeat`` runs,
after a warm-up, by the wall clock or (``--clock cpu``) this process's CPU time, which a busy shared
machine disturbs less.

    python benchmarks/reference_throughput.py [--sizes 10 16 20] [--formats float32 float64]
                                              [--optimizers adam sgd rmsprop] [--repeat 3]
                                              [--exact-elements 64] [--clock wall|cpu]
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
from reference.fast import (fast_reference_and_bounds, fast_trajectory, fast_trajectory_bounds,  # noqa: E402
                            fast_verdicts)
from reference.formats import FORMATS  # noqa: E402
from reference.step import trajectory  # noqa: E402

FORMAT_NAMES = ("float16", "bfloat16", "float32", "float64")
OPTIMIZERS = {  # name: (spec, hyperparameters, torch class name, torch keyword arguments)
    "adam": ("adam", {}, "Adam", {}),
    "sgd": ("sgd", {"lr": 0.01, "momentum": 0.9}, "SGD", {"lr": 0.01, "momentum": 0.9}),
    "rmsprop": ("rmsprop", {}, "RMSprop", {}),
}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _data(fmt: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    dtype = FORMATS[fmt].dtype
    return rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)


def _best(fn, repeat: int, clock) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def _torch_step(name: str, param, grad):
    """A callable doing one torch step on copies of ``param``/``grad``, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    if param.dtype.name not in ("float16", "float32", "float64"):
        dtype = torch.bfloat16
        p = torch.tensor(param.astype(np.float32), dtype=dtype)
        g = torch.tensor(grad.astype(np.float32), dtype=dtype)
    else:
        p, g = torch.tensor(param), torch.tensor(grad)
    p = torch.nn.Parameter(p)
    _, _, cls, kwargs = OPTIMIZERS[name]
    opt = getattr(torch.optim, cls)([p], **kwargs)
    p.grad = g

    def step():
        opt.step()
    return step


def _checked(s, hyper, param, grad, f):
    snaps, bounds = fast_reference_and_bounds(s, hyper, param, [grad], f)
    for name, got in snaps[0].rounded[f.name].items():
        fast_verdicts(got, snaps[0], bounds[0], name, f)


def measure(name: str, fmt: str, n: int, repeat: int, exact_elements: int, clock, seed: int = 0) -> dict:
    spec_name, hyper, _, _ = OPTIMIZERS[name]
    s = spec.OPTIMIZERS[spec_name]
    f = FORMATS[fmt]
    param, grad = _data(fmt, n, seed)
    out = {}
    torch_step = _torch_step(name, param, grad)
    if torch_step is not None:
        torch_step()
        out["torch"] = n / _best(torch_step, repeat, clock)
    runs = {
        "fast ref": lambda: fast_trajectory(s, hyper, param, [grad], formats=(fmt,)),
        "fast bound": lambda: fast_trajectory_bounds(s, hyper, param, [grad], f),
        "ref+bound": lambda: fast_reference_and_bounds(s, hyper, param, [grad], f),
        "checked": lambda: _checked(s, hyper, param, grad, f),
    }
    for key, fn in runs.items():
        fn()  # warm-up: the program's compilation, the arrays' first pages
        out[key] = n / _best(fn, repeat, clock)
    snaps, bounds = fast_reference_and_bounds(s, hyper, param, [grad], f)
    out["phase 2 ref"] = float(snaps[0].phase2.mean())
    out["phase 2 bound"] = float(bounds[0].phase2.mean())
    k = min(n, exact_elements)
    out["interval ref"] = k / _best(lambda: trajectory(s, hyper, param[:k], [grad[:k]], formats=(fmt,)), 1, clock)
    out["interval bound"] = k / _best(lambda: trajectory_bounds(s, hyper, param[:k], [grad[:k]], f), 1, clock)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 16, 20], help="log2 of the element counts")
    parser.add_argument("--formats", nargs="+", default=["float32", "float64"], choices=FORMAT_NAMES)
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=tuple(OPTIMIZERS))
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (the best is kept)")
    parser.add_argument("--exact-elements", type=int, default=64, help="elements timed for the interval path")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time")
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]
    try:
        import torch
        torch.set_num_threads(1)
        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"

    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(f"python {platform.python_version()}, numpy {np.__version__}, mpmath {mpmath.__version__} "
          f"(backend {mpmath.libmp.BACKEND}), torch {torch_version} (1 thread), {platform.machine()}")
    print(f"one step, N(0, 1) data; element-steps per second ({args.clock} clock, best of {args.repeat}); "
          f"phase 2: share of elements escalated (reference / bound)")
    print()
    columns = ["torch", "fast ref", "fast bound", "ref+bound", "checked", "interval ref", "interval bound"]
    head = f"{'optimizer':<10}{'format':<9}{'elements':>9}" + "".join(f"{c:>15}" for c in columns) + \
        f"  {'phase 2 (ref / bound)':>24}"
    print(head)
    print("-" * len(head))
    measure("adam", "float32", 64, 1, 8, clock)  # warm-up: imports, compilation, mpmath caches
    for name in args.optimizers:
        for fmt in args.formats:
            for k in args.sizes:
                r = measure(name, fmt, 2 ** k, args.repeat, args.exact_elements, clock)
                cells = "".join(f"{r[c]:>15,.0f}" if c in r else f"{'-':>15}" for c in columns)
                share = f"{r['phase 2 ref']:.4%} / {r['phase 2 bound']:.4%}"
                print(f"{name:<10}{fmt:<9}{'2^' + str(k):>9}{cells}  {share:>24}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
